"""The one-core floors the speed benchmarks print (rnnsearch.bench.floors): multiply-adds
counted per encoder layer at the positions it runs on, and the floor of a forced-length beam
search from them, checked against sums written out by hand for a small LAS-like model."""
import numpy as np
import pytest

from rnnsearch.bench import floors


def las_like_tensors():
    """Shapes of a model with a pyramidal feature encoder (2 BiLSTM layers of 4 over 6-wide
    frames, the second over concatenated pairs), additive attention of 5 and an LSTM decoder
    of 3 with readout from [state; context]."""
    shapes = {"attention.key.weight": (5, 8), "attention.query.weight": (5, 3),
              "attention.v": (5,), "decoder.embedding.weight": (11, 2),
              "decoder.layers.0.weight_ih": (12, 10), "decoder.layers.0.weight_hh": (12, 3),
              "decoder.layers.0.bias_ih": (12,), "decoder.output.weight": (11, 11),
              "decoder.output.bias": (11,)}
    for layer, width in ((0, 6), (1, 16)):
        for direction in ("forward", "backward"):
            prefix = f"encoder.layers.{layer}.{direction}."
            shapes[prefix + "weight_ih"] = (16, width)
            shapes[prefix + "weight_hh"] = (16, 4)
            shapes[prefix + "bias_ih"] = (16,)
    return {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}


def test_encoder_counts_each_layer_at_its_own_positions():
    t = las_like_tensors()
    layer0 = 2 * (16 * 6 + 16 * 4)     # both directions, per position
    layer1 = 2 * (16 * 16 + 16 * 4)
    keys = 5 * 8
    assert floors.encoder_macs(t, [12, 6], 3) == 12 * layer0 + 6 * layer1 + 3 * keys


def test_decoder_row_counts_every_per_step_matrix_and_attention():
    t = las_like_tensors()
    matrices = 5 * 3 + 12 * 10 + 12 * 3 + 11 * 11   # query, LSTM, output
    assert floors.decoder_row_macs(t, 3) == matrices + 3 * (5 + 8)


@pytest.mark.parametrize("cache", [0, 10 ** 9])
def test_search_floor_is_compute_or_weight_reading_per_step(cache):
    t = las_like_tensors()
    encoder, row = floors.encoder_macs(t, [12, 6], 3), floors.decoder_row_macs(t, 3)
    mac_rate, read_rate = 1e6, 1e3
    step_read = 0.0 if cache else floors.decoder_step_bytes(t) / read_rate
    expected = (2 * encoder / mac_rate + max(step_read, 2 * row / mac_rate)
                + 3 * max(step_read, 2 * 5 * row / mac_rate))
    got = floors.search_floor_seconds(t, [12, 6], 3, batch=2, beam=5, length=4,
                                      read_rate=read_rate, mac_rate=mac_rate,
                                      cache_bytes=cache)
    assert got == pytest.approx(expected)
    assert step_read == 0.0 or got > 4 * step_read - 1e-12   # reading dominates here


def test_beam_search_flops_is_twice_the_multiply_adds():
    t = las_like_tensors()
    flops = floors.beam_search_flops(t, 7, batch=2, beam=3, length=4)
    rows = 2 + 2 * 3 * 3
    assert flops == 2.0 * (2 * floors.encoder_macs(t, [7, 7], 7)
                           + rows * floors.decoder_row_macs(t, 7))


def test_last_level_cache_is_a_positive_size():
    assert floors.last_level_cache_bytes() >= 2 ** 20


def test_search_floors_brackets_cache_kept_and_streamed():
    t = las_like_tensors()
    kept, streamed = floors.search_floors(t, [12, 6], 3, batch=1, beam=5, length=4,
                                          read_rate=1e3, mac_rate=1e9)
    assert kept == pytest.approx(floors.search_floor_seconds(
        t, [12, 6], 3, 1, 5, 4, 1e3, 1e9, floors.last_level_cache_bytes()))
    assert streamed == pytest.approx(4 * floors.decoder_step_bytes(t) / 1e3, rel=1e-4)
    assert kept < streamed


def test_decoded_macs_count_every_source_and_row():
    """bench_opennmt's FMA floor: each source through every layer (no subsampling) and its
    keys, then every decoded row attending over the shortest source; without a key
    projection, the rows' matrices alone."""
    t = las_like_tensors()
    per_token = 2 * (16 * 6 + 16 * 4) + 2 * (16 * 16 + 16 * 4) + 5 * 8
    matrices = 5 * 3 + 12 * 10 + 12 * 3 + 11 * 11
    assert floors.decoded_macs(t, [4, 7], 9) == 11 * per_token + 9 * (matrices + 4 * (5 + 8))
    del t["attention.key.weight"]
    assert floors.decoded_macs(t, [4, 7], 9) == 11 * (per_token - 5 * 8) + 9 * matrices
