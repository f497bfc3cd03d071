"""What the encoder reads and how it reshapes the source along time (docs/model-format.md,
"source" and "Encoders over features"): the source kind (token ids, one-hot vectors or
dense feature frames), the features' input projection, subsampling between layers (the
pyramid of Listen, Attend and Spell, ESPnet's strides) and ESPnet's per-layer projections.

model_spec.py calls these from normalize_config, Dimensions and expected_tensors; this
module imports nothing above errors.py and attention_options.py. Tensors are returned as
{name: (shape, optional)}.
"""
from __future__ import annotations

from .attention_options import REQUIRED, merge_object
from .errors import ModelError
from .limits import MAX_LAYERS, MAX_WIDTH

SOURCE_KINDS = ("ids", "one_hot", "features")
SUBSAMPLE_MODES = ("concat", "stride")
ACTIVATIONS = ("identity", "tanh", "relu")
CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
DEFAULT_VOCABULARY = "source_vocabulary.txt"
MAX_FACTOR = 64          # a subsampling factor beyond this is a typo, not a model

INPUT_PROJECTION = {"size": REQUIRED, "activation": "identity"}
PROJECTION = {"size": REQUIRED, "activation": "tanh"}
# source keys that mean nothing for feature frames: they must keep these values
_TOKEN_ONLY = {"lowercase": False, "add_bos": False, "add_eos": False, "pad_to_length": None,
               "per_word": False}


def _positive(where: str, value, minimum: int = 1, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or \
            (maximum is not None and value > maximum):
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if maximum is not None:
            kind += f" <= {maximum}"
        raise ModelError(f"config.json: {where} = {value!r}; expected {kind}")


def _merge(where: str, given, defaults: dict) -> dict:
    """An {size, activation} object over its defaults, checked."""
    if given is not None and not isinstance(given, dict):
        raise ModelError(f"config.json: {where} = {given!r}; expected an object or null")
    merged = merge_object(where, given, defaults)
    _positive(f"{where}.size", merged["size"], 1, MAX_WIDTH)
    if merged["activation"] not in ACTIVATIONS:
        raise ModelError(f"config.json: {where}.activation = {merged['activation']!r}; "
                         f"expected one of {list(ACTIVATIONS)}")
    return merged


def normalize_source(config: dict) -> None:
    """Check source.kind with the encoder keys that depend on it, in place, filling the
    option objects' defaults; ModelError naming the field on any fault."""
    src, enc = config["source"], config["encoder"]
    kind = src["kind"]
    if kind not in SOURCE_KINDS:
        raise ModelError(f"config.json: source.kind = {kind!r}; expected one of "
                         f"{list(SOURCE_KINDS)}")
    if kind == "features":
        _positive("source.feature_size", src["feature_size"], 1, MAX_WIDTH)
        if src["vocabulary"] not in (None, DEFAULT_VOCABULARY):
            raise ModelError("config.json: source.vocabulary must be null for source.kind "
                             "'features' (feature frames have no vocabulary)")
        src["vocabulary"] = None
        for key, value in _TOKEN_ONLY.items():
            if src[key] != value:
                raise ModelError(f"config.json: source.{key} = {src[key]!r} applies to token "
                                 f"sources; source.kind 'features' needs {value!r}")
        if enc["embedding_size"] is not None:
            raise ModelError("config.json: encoder.embedding_size must be null for "
                             "source.kind 'features' (the frames are the input; "
                             "encoder.input_projection maps them to another width)")
        if enc["input_projection"] is not None:
            enc["input_projection"] = _merge("encoder.input_projection",
                                             enc["input_projection"], INPUT_PROJECTION)
        _positive("encoder.num_layers", enc["num_layers"], 0, MAX_LAYERS)
    else:
        if kind == "one_hot":   # the width of the one-hot vectors the framework read
            _positive("source.feature_size", src["feature_size"], 1, MAX_WIDTH)
        elif src["feature_size"] is not None:
            raise ModelError("config.json: source.feature_size applies to source.kind "
                             "'features' and 'one_hot', not 'ids'")
        if src["vocabulary"] is None:
            raise ModelError(f"config.json: source.vocabulary = None; expected a file name "
                             f"(source.kind {kind!r} needs a vocabulary)")
        if enc["input_projection"] is not None:
            raise ModelError("config.json: encoder.input_projection applies to source.kind "
                             "'features'")
        if enc["embedding_size"] is None:
            raise ModelError("config.json: encoder.embedding_size is required")
        _positive("encoder.embedding_size", enc["embedding_size"], 1, MAX_WIDTH)
        _positive("encoder.num_layers", enc["num_layers"], 1, MAX_LAYERS)
    layers = enc["num_layers"]
    if layers:
        for key in ("cell", "hidden_size"):
            if enc[key] is None:
                raise ModelError(f"config.json: encoder.{key} is required")
        if enc["cell"] not in CELLS:
            raise ModelError(f"config.json: encoder.cell = {enc['cell']!r}; expected one of "
                             f"{list(CELLS)}")
        _positive("encoder.hidden_size", enc["hidden_size"], 1, MAX_WIDTH)
    _normalize_time_options(enc, layers)
    _check_stacked_widths(config)


def _normalize_time_options(enc: dict, layers: int) -> None:
    if enc["subsample_mode"] not in SUBSAMPLE_MODES:
        raise ModelError(f"config.json: encoder.subsample_mode = {enc['subsample_mode']!r}; "
                         f"expected one of {list(SUBSAMPLE_MODES)}")
    factors = enc["subsample"]
    if factors is not None:
        if not isinstance(factors, list) or len(factors) != layers + 1:
            raise ModelError(f"config.json: encoder.subsample = {factors!r}; expected a list "
                             f"of {layers + 1} factors (the input's, then one after each of "
                             f"the {layers} layers)")
        for i, factor in enumerate(factors):
            _positive(f"encoder.subsample[{i}]", factor, 1, MAX_FACTOR)
        if all(f == 1 for f in factors):
            enc["subsample"] = None
    if enc["projection"] is not None:
        if not layers:
            raise ModelError("config.json: encoder.projection needs encoder layers")
        enc["projection"] = _merge("encoder.projection", enc["projection"], PROJECTION)
    for key in ("residual", "stacking"):
        if enc.get(key) not in (False, "layerwise", None) and \
                (enc["subsample"] is not None or enc["projection"] is not None):
            raise ModelError(f"config.json: encoder.{key} = {enc[key]!r} cannot be combined "
                             "with encoder.subsample or encoder.projection")


def _check_stacked_widths(config: dict) -> None:
    """Frame stacking (subsample_mode 'concat') multiplies a width by its factor: every
    width it makes must stay within the engine's (rnnsearch.limits.MAX_WIDTH)."""
    enc = config["encoder"]
    if enc["subsample"] is None or enc["subsample_mode"] != "concat":
        return
    widths = [(0, _reduced(enc, input_width(config), factors(enc)[0]))] + \
        [(layer + 1, reduced_output_width(config, layer)) for layer in range(enc["num_layers"])]
    for index, width in widths:
        if width > MAX_WIDTH:
            raise ModelError(f"config.json: encoder.subsample[{index}] = "
                             f"{enc['subsample'][index]} stacks frames {width} values wide; "
                             f"at most {MAX_WIDTH} are supported")


# ---- widths ------------------------------------------------------------------------------
def factors(enc: dict) -> list[int]:
    """The subsampling factor of the input (index 0) and after each layer."""
    return enc["subsample"] or [1] * (enc["num_layers"] + 1)


def rnn_width(enc: dict) -> int:
    """D_e: a layer's merged output (directions concatenated or summed)."""
    if not enc["num_layers"]:
        return 0
    return enc["hidden_size"] * (2 if enc["bidirectional"] and enc["merge"] == "concat" else 1)


def input_width(config: dict) -> int:
    """What the source stage gives the first layer: embeddings, or frames (projected)."""
    src, enc = config["source"], config["encoder"]
    if src["kind"] != "features":
        return enc["embedding_size"]
    projection = enc["input_projection"]
    return projection["size"] if projection else src["feature_size"]


def _reduced(enc: dict, width: int, factor: int) -> int:
    return width * factor if enc["subsample_mode"] == "concat" else width


def layer_input_widths(config: dict) -> list[int]:
    """The input width of every encoder layer."""
    enc = config["encoder"]
    if not enc["num_layers"]:
        return []
    widths = [_reduced(enc, input_width(config), factors(enc)[0])]
    for layer in range(1, enc["num_layers"]):
        if enc.get("stacking", "layerwise") != "layerwise":
            widths.append(enc["hidden_size"])   # each direction reads its own stack
        else:
            widths.append(layer_output_width(config, layer - 1))
    return widths


def reduced_output_width(config: dict, layer: int) -> int:
    """Layer `layer`'s output after its subsampling (what its projection reads)."""
    enc = config["encoder"]
    return _reduced(enc, rnn_width(enc), factors(enc)[layer + 1])


def layer_output_width(config: dict, layer: int) -> int:
    """Layer `layer`'s output after subsampling and projection."""
    projection = config["encoder"]["projection"]
    return projection["size"] if projection else reduced_output_width(config, layer)


def memory_width(config: dict) -> int:
    """D_m: one position of the memory the attention reads."""
    enc = config["encoder"]
    if enc["num_layers"]:
        return layer_output_width(config, enc["num_layers"] - 1)
    return _reduced(enc, input_width(config), factors(enc)[0])


def tensors(config: dict, source_vocab_size: int | None) -> dict:
    """The source stage's and the layers' extra tensors: {name: (shape, optional)}; the
    recurrent weights themselves stay model_spec's."""
    src, enc = config["source"], config["encoder"]
    out = {}
    if src["kind"] != "features":
        out["encoder.embedding.weight"] = ((source_vocab_size, enc["embedding_size"]), False)
    elif enc["input_projection"] is not None:
        size = enc["input_projection"]["size"]
        out["encoder.input_projection.weight"] = ((size, src["feature_size"]), False)
        out["encoder.input_projection.bias"] = ((size,), True)
    if enc["projection"] is not None:
        size = enc["projection"]["size"]
        for layer in range(enc["num_layers"]):
            prefix = f"encoder.layers.{layer}.projection"
            out[f"{prefix}.weight"] = ((size, reduced_output_width(config, layer)), False)
            out[f"{prefix}.bias"] = ((size,), True)
    return out


def memory_length(enc: dict, length: int) -> int:
    """How many memory positions a source of `length` positions gives (0: too short).

    concat: f consecutive positions become one, a last incomplete group is dropped (the
    pyramidal BiLSTM implementations of Listen, Attend and Spell); stride: every f-th
    position from the first, counted as ESPnet counts them: ceil(L / f) at the input (its
    data loader's x[::f]), (L + 1) // f after a layer (its RNNP's ilens), which agree for
    f <= 2."""
    for index, factor in enumerate(factors(enc)):
        if factor == 1:
            continue
        if enc["subsample_mode"] == "concat":
            length //= factor
        elif index == 0:
            length = -(-length // factor)
        else:
            length = (length + 1) // factor
    return length


def shortest_source(enc: dict) -> int:
    """The fewest positions that leave at least one memory position."""
    length = 1
    while memory_length(enc, length) < 1:
        length += 1
    return length


def check_vocabulary_size(config: dict, size: int | None, where: str) -> None:
    """A one_hot model's vocabulary: the V one-hot positions, and perhaps one more entry
    for the all-zero vector; a features model has none."""
    src = config["source"]
    if src["kind"] == "features":
        if size:
            raise ModelError(f"{where}: a features model has no source vocabulary")
    elif not size:
        raise ModelError(f"{where}: a {src['kind']!r} model needs a source vocabulary")
    elif src["kind"] == "one_hot" and not src["feature_size"] <= size <= src["feature_size"] + 1:
        raise ModelError(f"{where}: the source vocabulary has {size} tokens; a one_hot model "
                         f"of source.feature_size {src['feature_size']} needs "
                         f"{src['feature_size']} (its positions) or one more (the all-zero "
                         "vector)")
