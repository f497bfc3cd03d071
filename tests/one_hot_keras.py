"""The Keras lstm_seq2seq example and its attention variants, as the one-hot fixtures build
them (tools/make_one_hot_fixtures.py on Keras's torch backend, tools/make_tf2onnx_fixtures.py
on TensorFlow). No torch here: the TensorFlow environment has none. Keras is imported
inside keras_model (choose KERAS_BACKEND before importing keras anywhere)."""
from __future__ import annotations

LATENT = 24                                      # the Keras models' LSTM units
KERAS_VARIANTS = ("lstm_seq2seq", "dot_attention", "additive_attention")
KERAS_EPOCHS = 60
KERAS_LEARNING_RATE = 0.01   # the example's rmsprop, at 10x its default rate: a few seconds


def keras_model(variant, num_encoder_tokens, num_decoder_tokens):
    """The example's training model; the attention variants attend over the encoder outputs
    with the decoder outputs as queries and concatenate [decoder outputs; context]."""
    import keras
    L = keras.layers
    encoder_inputs = keras.Input(shape=(None, num_encoder_tokens), name="encoder_inputs")
    attention = variant != "lstm_seq2seq"
    encoder = L.LSTM(LATENT, return_state=True, return_sequences=attention, name="encoder")
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    decoder_inputs = keras.Input(shape=(None, num_decoder_tokens), name="decoder_inputs")
    decoder_lstm = L.LSTM(LATENT, return_sequences=True, return_state=True, name="decoder")
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=[state_h, state_c])
    if attention:
        layer = L.Attention(name="attention") if variant == "dot_attention" else \
            L.AdditiveAttention(name="attention")
        context = layer([decoder_outputs, encoder_outputs])
        decoder_outputs = L.Concatenate(name="concat")([decoder_outputs, context])
    outputs = L.Dense(num_decoder_tokens, activation="softmax", name="dense")(decoder_outputs)
    return keras.Model([encoder_inputs, decoder_inputs], outputs)


def train_keras_model(variant, seed, arrays, num_encoder_tokens, num_decoder_tokens):
    """The variant trained as the example trains it (rmsprop, categorical cross-entropy,
    batches of 32) on tests/one_hot_task.py's training arrays; returns (model, last loss)."""
    import keras
    keras.utils.set_random_seed(seed)
    model = keras_model(variant, num_encoder_tokens, num_decoder_tokens)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=KERAS_LEARNING_RATE),
                  loss="categorical_crossentropy")
    history = model.fit(list(arrays[:2]), arrays[2], batch_size=32, epochs=KERAS_EPOCHS,
                        verbose=0)
    return model, float(history.history["loss"][-1])
