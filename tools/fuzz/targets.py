"""Fuzz targets: one per loader of a model directory and per converter input parser.

A target takes bytes, makes them one file of a real model (a model directory's config,
weights or vocabulary; a converter's checkpoint, config, graph, archive or vocabulary),
keeps the other files as they were (tools/fuzz/base, tests/fixtures), and runs what a user
would run on it: load and translate, or convert. check() then says how it ended:

    ok          loaded / converted (and, for model directories, translated)
    refused     a documented exception: ModelError, EngineError, ValueError, TypeError
    guarded     a ModelError from a converter's last-resort guard (convert/common/guard.py):
                documented, but the input failed somewhere no check foresaw
and any other exception is a finding, raised to the fuzzer. A crash kills the process and
a hang or a memory blow-up is caught by the driver's limits (tools/fuzz.py).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BASE = os.path.join(HERE, "base")
CORPUS = os.path.join(HERE, "corpus")
REGRESSIONS = os.path.join(HERE, "regressions")
JOEYNMT = os.path.join(ROOT, "tests", "fixtures", "joeynmt", "gru_bahdanau_bridge_feed")


class Target:
    """A family of targets: the base folder they copy (family) and what they run; an
    instance fuzzes one file of it (name: the target, fuzzed: the file the bytes become)."""
    family = ""

    def __init__(self, name: str, fuzzed: str, description: str):
        self.name, self.fuzzed, self.description = name, fuzzed, description
        self.work = tempfile.mkdtemp(prefix=f"rnnsearch-fuzz-{self.name}-")
        source = JOEYNMT if self.family == "joeynmt" else os.path.join(BASE, self.family)
        self.folder = os.path.join(self.work, "input")
        shutil.copytree(source, self.folder,
                        ignore=shutil.ignore_patterns("expected.json"))
        self.output = os.path.join(self.work, "output")

    def write(self, data: bytes) -> str:
        path = os.path.join(self.folder, self.fuzzed)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


# ---------------------------------------------------------------- model directories

class ModelDirTarget(Target):
    family = "model"

    def run(self, data: bytes) -> None:
        self.write(data)
        self.translate()

    def translate(self) -> None:
        import rnnsearch
        for compute_type in ("float32", "int8"):
            translator = rnnsearch.Translator(self.folder, compute_type=compute_type)
            if translator.config["source"]["kind"] != "ids":
                _translate_arrays(translator)
                continue
            vocab = translator.source_vocab.tokens
            source = [vocab[i % len(vocab)] for i in range(3)]
            if translator.config.get("copy") is not None:
                _translate_copy(translator, source)
                continue
            translator.translate_batch([source, source[:1], []], beam_size=2,
                                       num_hypotheses=2, max_decoding_length=6,
                                       return_attention=True, coverage_penalty=0.2,
                                       length_penalty=0.6, truncate=True)
            # the streaming path (greedy, a token callback that stops one sentence early)
            list(translator.generate_tokens(source, max_decoding_length=4))
            translator.translate_batch([source, source[:1]], beam_size=1,
                                       max_decoding_length=4, truncate=True,
                                       callback=lambda step: step.step >= 1)
            if translator.config["encoder"]["pooling"] is not None:
                translator.encode([source, source[:1]], return_weights=True, truncate=True)


class VmapTarget(ModelDirTarget):
    """The model directory's vocabulary map (docs/vmap.md), decoded with use_vmap."""

    def translate(self) -> None:
        import rnnsearch
        for compute_type in ("float32", "int8"):
            translator = rnnsearch.Translator(self.folder, compute_type=compute_type)
            vocab = translator.source_vocab.tokens
            source = [vocab[i % len(vocab)] for i in range(3)]
            translator.translate_batch([source, source[:1], []], beam_size=2,
                                       num_hypotheses=2, max_decoding_length=6,
                                       use_vmap=True, return_attention=True)
            list(translator.generate_tokens(source, max_decoding_length=4, use_vmap=True))


def _translate_copy(translator, source: list[str]) -> None:
    """A copy-attention model: only OpenNMT-py's search decodes it (beam with n-best, its
    penalties and n-gram blocking; greedy); source tokens may come out as copies."""
    translator.translate_batch([source, source[:1], []], search="opennmt", beam_size=2,
                               n_best=2, max_length=6, length_penalty="wu", alpha=0.6,
                               coverage_penalty="summary", beta=0.2, block_ngram_repeat=1,
                               return_attention=True, truncate=True)
    translator.translate_batch([source, source[:1]], search="opennmt", beam_size=1,
                               max_length=4, truncate=True)


def _translate_arrays(translator) -> None:
    """A one_hot or features model: arrays of its width, beam and greedy with a callback."""
    import numpy as np
    width = translator.config["source"]["feature_size"]
    if translator.config["source"]["kind"] == "one_hot":
        arrays = [np.eye(width, dtype=np.float32)[[i % width for i in range(length)]]
                  for length in (3, 1)]
    else:
        rng = np.random.default_rng(0)
        arrays = [rng.standard_normal((length, width)).astype(np.float32)
                  for length in (12, 9)]
    translator.translate_features(arrays, beam_size=2, num_hypotheses=2,
                                  max_decoding_length=6, return_attention=True,
                                  coverage_penalty=0.2, length_penalty=0.6, truncate=True,
                                  max_batch_size=1)
    translator.translate_features(arrays, beam_size=1, max_decoding_length=4, truncate=True,
                                  callback=lambda step: step.step >= 1)


class _Picker:
    """Choices driven by the fuzzer's bytes (zeros once they run out)."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def byte(self) -> int:
        self.at += 1
        return self.data[self.at - 1] if self.at <= len(self.data) else 0

    def choose(self, options):
        return options[self.byte() % len(options)]


class ArchitectureTarget(ModelDirTarget):
    """The bytes choose an architecture (each config key: left out, or one of its choices,
    a boolean, a size from 1 to 8; the option objects of attention_options.py -- local,
    mocha, key_value, encoder pooling -- left out or built key by key the same way; last,
    the attention types that carry state, stateful_attention.py), the vocabulary sizes,
    the weights' seed and which optional tensors exist; when the config is consistent, a
    random model of it is written and loaded and translated as above: the engine over
    every combination the schema allows, at tiny sizes."""

    def run(self, data: bytes) -> None:
        from rnnsearch import model_spec
        from rnnsearch.model_dir import write_model_dir
        from rnnsearch.random_model import random_tensors, vocabularies
        pick = _Picker(data)
        objects = _option_tables()
        config = {"format": "rnnsearch-model", "format_version": 1}
        sections = [s for s, fields in model_spec._SCHEMA.items()
                    if isinstance(fields, dict) and s != "special_tokens"]
        # optional sections last, each behind a byte of its own, so that sections added to
        # the schema later do not change what the committed seeds' bytes choose
        late = [s for s in sections if s in OPTIONAL_SECTIONS]
        for section in [s for s in sections if s not in late] + late:
            fields = model_spec._SCHEMA[section]
            if section in late and not pick.byte() % 2:
                continue
            chosen = {}
            for key, default in fields.items():
                if (section, key) in _SOURCE_STAGE_KEYS or (section, key) in _STATEFUL_KEYS:
                    continue   # chosen last (_source_stage, _stateful_attention)
                if (section, key) in _TOKEN_ENCODER_KEYS:
                    default = model_spec.REQUIRED
                if (section, key) in objects:
                    if pick.byte() % 2:
                        chosen[key] = _option_object(pick, objects[(section, key)])
                    continue
                options = _options(section, key, default)
                if options and (default is model_spec.REQUIRED or pick.byte() % 2):
                    chosen[key] = pick.choose(options)
            config[section] = chosen
        _source_stage(pick, config)
        self.stateful_at = pick.at     # where the stateful stage reads (seed finding)
        _stateful_attention(pick, config)
        if config["decoder"].get("type") == "none":
            config["attention"] = None
        model_spec.normalize_config(config)          # ModelError: an inconsistent choice
        source, target = 4 + pick.byte() % 6, 4 + pick.byte() % 6
        tensors = random_tensors(config, source, target, seed=pick.byte())
        for name, spec in model_spec.expected_tensors(
                model_spec.normalize_config(config), source, target).items():
            if spec.optional and pick.byte() % 2:
                del tensors[name]
        shutil.rmtree(self.folder, ignore_errors=True)   # a refused write leaves none
        source_vocab, target_vocab = vocabularies(source, target)
        write_model_dir(self.folder, config, tensors,
                        None if config["source"].get("kind") == "features" else source_vocab,
                        target_vocab)
        self.translate()


# config sections that may be absent (null) as a whole
OPTIONAL_SECTIONS = ("copy", "opennmt")

# the source stage (source_options.py): chosen after the other keys, so that bytes that
# end before them (zeros) choose token ids and no subsampling
_SOURCE_STAGE_KEYS = {("source", "kind"), ("source", "feature_size"),
                      ("encoder", "input_projection"), ("encoder", "subsample"),
                      ("encoder", "subsample_mode"), ("encoder", "projection"),
                      ("attention", "score_activation"), ("attention", "gate_per_dimension")}
# the stateful types' sub-objects and the scaling (stateful_attention.py): chosen after the
# source stage, behind a byte of their own
_STATEFUL_KEYS = {("attention", name) for name in
                  ("location", "coverage", "forward", "multi_head", "scaling")}
# required for token sources (source_options.normalize_source)
_TOKEN_ENCODER_KEYS = {("encoder", "embedding_size"), ("encoder", "cell"),
                       ("encoder", "hidden_size")}


def _source_stage(pick: _Picker, config: dict) -> None:
    """Token ids, one-hot vectors or feature frames (then without embeddings, maybe with 0
    layers and an input projection), subsampling and per-layer projections, relu scores and
    the per-dimension gate, each chosen from the bytes (0: left out)."""
    from rnnsearch import source_options
    src, enc, att = config["source"], config["encoder"], config.get("attention")
    kind = source_options.SOURCE_KINDS[pick.byte() % 3]
    if kind != "ids":
        src["kind"] = kind
        src["feature_size"] = pick.choose([1, 2, 3, 5, 8])
    if kind == "features":
        src["vocabulary"] = None
        enc.pop("embedding_size", None)
        if pick.byte() % 2:
            enc["input_projection"] = {"size": pick.choose([1, 2, 4, 8]),
                                       "activation": pick.choose(source_options.ACTIVATIONS)}
        if pick.byte() % 4 == 1:
            enc["num_layers"] = 0
    layers = enc.get("num_layers", 1)
    if pick.byte() % 2:
        enc["subsample"] = [pick.choose([1, 1, 2, 3]) for _ in range(layers + 1)]
        enc["subsample_mode"] = pick.choose(source_options.SUBSAMPLE_MODES)
    if layers and pick.byte() % 4 == 1:
        enc["projection"] = {"size": pick.choose([1, 2, 4, 8]),
                             "activation": pick.choose(source_options.ACTIVATIONS)}
    if isinstance(att, dict):
        if pick.byte() % 4 == 1:
            att["score_activation"] = "relu"
        if pick.byte() % 4 == 1:
            att["gate"] = att["gate_per_dimension"] = True


def _stateful_attention(pick: _Picker, config: dict) -> None:
    """Behind a byte of its own (0: none of it): a type that carries state, its score (a
    zero byte keeps the main loop's, which these types mostly refuse) and each sub-object
    the type takes, left out (a fourth of the time: refused, or a default) or built key by
    key; then, behind a byte, the attention's scaling (some of its choices refused)."""
    from rnnsearch import stateful_attention as sa
    att = config.get("attention")
    if not isinstance(att, dict):
        return
    if pick.byte() % 2:
        kind = att["type"] = pick.choose(sa.STATEFUL_TYPES)
        if pick.byte() % 2:
            att["score"] = pick.choose(["additive", "tanh_dot"])
            if att.get("size") is None:
                att["size"] = pick.choose([1, 2, 4])
        tables = _stateful_tables()
        for name in sa.SUB_OBJECTS:
            if name in sa._OPTIONS_OF[kind] and pick.byte() % 4:
                att[name] = _option_object(pick, tables[name])
    if pick.byte() % 4 == 1:
        att["scaling"] = pick.choose([0.5, 2.0, 1, 0, -1.0])


def _stateful_tables() -> dict:
    from rnnsearch import stateful_attention as sa
    return {"location": ("location", sa.LOCATION), "coverage": ("coverage", sa.COVERAGE),
            "forward": ("forward", sa.FORWARD), "multi_head": ("multi_head", sa.MULTI_HEAD)}


# choices of the option objects' keys beyond attention_options._CHOICES
def _object_choices() -> dict:
    from rnnsearch import attention_options as ao
    from rnnsearch import stateful_attention as sa
    return {**ao._CHOICES,
            ("location", "input"): sa.LOCATION_INPUTS,
            ("location", "initial"): sa.INITIAL_WEIGHTS,
            ("coverage", "update"): sa.COVERAGE_UPDATES,
            ("coverage", "initial"): ("uniform", "zeros"),
            ("location", "recurrent"): (False, True),
            ("forward", "transition_agent"): (False, True),
            ("local", "gaussian"): (None, False, True),
            # one per head (1 to 3 heads, odd sizes), or refused ones
            ("multi_head", "kernel_sizes"): (None, [1], [3], [1, 3], [3, 5, 1], [3, 3],
                                             [2], [])}


def _option_tables() -> dict:
    """The config keys that hold an option object: (its name, its keys and defaults)."""
    from rnnsearch import attention_options as ao
    return {("encoder", "pooling"): ("pooling", ao.POOLING),
            ("attention", "key_value"): ("key_value", ao.KEY_VALUE),
            ("attention", "local"): ("local", ao.LOCAL),
            ("attention", "mocha"): ("mocha", ao.MOCHA)}



def _option_object(pick: _Picker, table: tuple[str, dict]) -> dict:
    """An option object with each key left out (if it has a default) or chosen:
    one of its choices, a boolean or None, a size from 0 to 8."""
    from rnnsearch import attention_options as ao
    name, defaults = table
    choices = _object_choices()
    chosen = {}
    for key, default in defaults.items():
        if default is not ao._REQUIRED and not pick.byte() % 2:
            continue
        if (name, key) in choices:
            chosen[key] = pick.choose(list(choices[(name, key)]))
        else:
            chosen[key] = pick.choose([0, 1, 2, 3, 4, 6, 8] + ([None] if default is None else []))
    return chosen


def _options(section: str, key: str, default) -> list:
    """What ArchitectureTarget may choose for a config key (empty: leave it alone)."""
    from rnnsearch import model_spec
    if (section, key) in model_spec._CHOICES:
        return list(model_spec._CHOICES[(section, key)])
    if (section, key) == ("encoder", "cell"):
        from rnnsearch import source_options
        return list(source_options.CELLS)
    if (section, key) in {("encoder", "num_layers"), ("encoder", "embedding_size"),
                          ("encoder", "hidden_size")}:
        return [1, 2, 3, 4, 6, 8]
    if (section, key) in model_spec._BOOLS:
        return [False, True]
    if (section, key) in model_spec._POSITIVE_INTS:
        return [1, 2, 3, 4, 6, 8] + ([None] if default is None else [])
    if key == "readout_inputs":
        return [["state"], ["context"], ["embedding"], ["state", "context"],
                ["state", "context", "embedding"], ["embedding", "context"]]
    return []


# ---------------------------------------------------------------- converters

def _quiet():
    """Converters print notes and warn about lossy choices; fuzzing makes many."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


class JoeyNMTTarget(Target):
    family = "joeynmt"

    def run(self, data: bytes) -> None:
        from rnnsearch.convert.joeynmt import convert
        self.write(data)
        with _quiet():
            convert(argparse.Namespace(model=self.folder, config=None, src_vocab=None,
                                       trg_vocab=None, output=self.output))


class OpenNMTTarget(Target):
    family = "torch"   # (any folder: the checkpoint is read alone)

    def run(self, data: bytes) -> None:
        from rnnsearch.convert.opennmt import convert
        path = self.write(data)
        with _quiet():
            convert(argparse.Namespace(checkpoint=path, output=self.output))


class TorchTarget(Target):
    family = "torch"

    def run(self, data: bytes) -> None:
        from rnnsearch.convert.torch import convert
        self.write(data)
        f = self.folder
        args = argparse.Namespace(
            checkpoint=os.path.join(f, "model.pt"), mapping=os.path.join(f, "mapping.json"),
            config=os.path.join(f, "config.json"), state_dict_key=None,
            source_vocab=os.path.join(f, "source.txt"),
            target_vocab=os.path.join(f, "target.txt"), output=self.output)
        with _quiet():
            convert(args)


class TorchJsonTarget(TorchTarget):
    """The bytes are the mapping or, when they start with a space, the architecture JSON
    (both are JSON objects the user writes)."""

    def write(self, data: bytes) -> str:
        self.fuzzed = "config.json" if data[:1] == b" " else "mapping.json"
        shutil.copy(os.path.join(BASE, "torch", "config.json"),
                    os.path.join(self.folder, "config.json"))
        shutil.copy(os.path.join(BASE, "torch", "mapping.json"),
                    os.path.join(self.folder, "mapping.json"))
        return super().write(data)


class OnnxTarget(Target):
    """The bytes are the encoder or the decoder graph of one of two pairs: a PyTorch export
    (base/onnx), or, for graphs tf2onnx produced (its name leads the file), the Keras
    lstm_seq2seq example with dot attention and one-hot inputs (base/onnx_keras). They are
    the decoder when they mention its inputs and outputs (as the decoder seeds and their
    mutants do: `memory`, and `logp` or `probs`)."""
    family = "onnx"

    def write(self, data: bytes) -> str:
        pair = "onnx_keras" if b"tf2onnx" in data[:64] else "onnx"
        for name in ("encoder.onnx", "decoder.onnx", "source.txt", "target.txt"):
            shutil.copy(os.path.join(BASE, pair, name), os.path.join(self.folder, name))
        self.fuzzed = "decoder.onnx" if b"memory" in data[:4096] and \
            (b"logp" in data or b"probs" in data) else "encoder.onnx"
        return super().write(data)

    def run(self, data: bytes) -> None:
        from rnnsearch.convert.onnx import convert_onnx
        self.write(data)
        f = self.folder
        with _quiet():
            convert_onnx(os.path.join(f, "encoder.onnx"), os.path.join(f, "decoder.onnx"),
                         self.output, source_vocab=os.path.join(f, "source.txt"),
                         target_vocab=os.path.join(f, "target.txt"))


class KerasTarget(Target):
    family = "keras"

    def run(self, data: bytes) -> None:
        from rnnsearch.convert.keras import convert_keras
        path = self.write(data)
        f = self.folder
        with _quiet():
            convert_keras(path if self.fuzzed.startswith("model") else
                          os.path.join(f, "model.keras"), self.output,
                          os.path.join(f, "source.json"), os.path.join(f, "target.json"),
                          bos="<start>", eos="<end>")


class MarianTarget(Target):
    """Marian's files, converted (`convert --from marian`) and the result decoded. The
    marian_yml bytes are the decoder config when they look like one (the seed and its
    mutants name `models:`), else the source vocabulary."""
    family = "marian"

    def write(self, data: bytes) -> str:
        if self.name == "marian_yml":
            self.fuzzed = "model.npz.decoder.yml" if b"models" in data[:4096] \
                else "vocab.src.yml"
            for name in ("model.npz.decoder.yml", "vocab.src.yml"):
                shutil.copy(os.path.join(BASE, "marian", name), os.path.join(self.folder, name))
        return super().write(data)

    def run(self, data: bytes) -> None:
        import rnnsearch
        from rnnsearch.convert.marian.converter import convert_marian
        self.write(data)
        shutil.rmtree(self.output, ignore_errors=True)
        with _quiet():
            convert_marian(os.path.join(self.folder, "model.npz"), self.output)
        translator = rnnsearch.Translator(self.output)
        vocab = translator.source_vocab.tokens
        translator.translate_batch([[vocab[i % len(vocab)] for i in range(3)]], beam_size=2,
                                   max_decoding_length=4)


class FeatureFileTarget(Target):
    """`rnnsearch translate --features FILE`: a .npy or .npz file of frames, read as the
    command line reads it (the bytes are the file; the model folder is not used)."""
    family = "model"

    def run(self, data: bytes) -> None:
        from rnnsearch.cli_features import read_feature_files
        read_feature_files([self.write(data)])


# name: (family, the file fuzzed, what it is)
TARGETS = {
    "config": (ModelDirTarget, "config.json",
               "config.json of a model directory (load, both compute types, translate)"),
    "safetensors": (ModelDirTarget, "model.safetensors",
                    "model.safetensors of a model directory (header and weights)"),
    "vocab": (ModelDirTarget, "source_vocabulary.txt", "a vocabulary file of a model directory"),
    "vmap": (VmapTarget, "vmap.txt", "a vocabulary map (vmap.txt) of a model directory"),
    "architecture": (ArchitectureTarget, "",
                     "every architecture of the schema at tiny sizes (random weights; the "
                     "engine)"),
    "joeynmt_config": (JoeyNMTTarget, "config.yaml",
                       "JoeyNMT config.yaml (with the fixture's checkpoint and vocabularies)"),
    "joeynmt_checkpoint": (JoeyNMTTarget, "best.ckpt", "JoeyNMT best.ckpt (torch zip + pickle)"),
    "opennmt_checkpoint": (OpenNMTTarget, "model.pt",
                           "OpenNMT-py checkpoint (.pt: torch zip + restricted pickle)"),
    "torch_checkpoint": (TorchTarget, "model.pt",
                         "PyTorch state_dict checkpoint (torch.load weights_only)"),
    "torch_json": (TorchJsonTarget, "mapping.json",
                   "the torch converter's mapping / architecture JSON"),
    "onnx": (OnnxTarget, "encoder.onnx",
             "ONNX encoder or decoder graph (protobuf, then the probe run)"),
    "keras_archive": (KerasTarget, "model.keras",
                      "Keras 3 .keras archive (zip of config.json + HDF5 weights)"),
    "keras_h5": (KerasTarget, "model.h5", "Keras legacy .h5 model (HDF5)"),
    "feature_file": (FeatureFileTarget, "frames.npz",
                     "a --features file: NumPy .npy or .npz arrays of frames"),
    "marian_npz": (MarianTarget, "model.npz",
                   "Marian model.npz (a zip of .npy arrays with its YAML options inside)"),
    "marian_yml": (MarianTarget, "vocab.src.yml",
                   "Marian's YAML: a vocabulary or the decoder config naming model and vocabularies"),
    "keras_vocab": (KerasTarget, "source.json",
                    "Keras vocabulary (Tokenizer JSON, word_index, token list or lines)"),
}


def make(name: str) -> Target:
    family, fuzzed, description = TARGETS[name]
    return family(name, fuzzed, description)


def classify(error: BaseException) -> str | None:
    """'refused' or 'guarded' for a documented exception; None for a finding."""
    from rnnsearch.errors import EngineError, ModelError
    if isinstance(error, ModelError):
        cause = error.__cause__
        guarded = "the input is malformed or not supported" in str(error) and \
            cause is not None and not isinstance(cause, ModelError)
        return "guarded" if guarded else "refused"
    if isinstance(error, (EngineError, ValueError, TypeError)):
        return "refused"
    return None


def check(target: Target, data: bytes, guarded: dict | None = None) -> str:
    """Run one input; returns the outcome, raises the exception if it is a finding.
    guarded: collects, per place in the code, the first unforeseen failure the guard
    caught (what to turn into a check of its own)."""
    try:
        target.run(data)
    except Exception as e:
        outcome = classify(e)
        if outcome is None:
            raise
        if outcome == "guarded" and guarded is not None:
            import traceback
            frame = traceback.extract_tb(e.__cause__.__traceback__)[-1]
            where = f"{os.path.basename(frame.filename)}:{frame.lineno}"
            guarded.setdefault(where, f"{type(e.__cause__).__name__}: {e.__cause__}"[:200])
        return outcome
    return "ok"


def seeds(name: str) -> list[tuple[str, bytes]]:
    """The committed inputs of a target: seeds, then regression inputs."""
    found = []
    for folder in (os.path.join(CORPUS, name), os.path.join(REGRESSIONS, name)):
        if os.path.isdir(folder):
            for entry in sorted(os.listdir(folder)):
                with open(os.path.join(folder, entry), "rb") as f:
                    found.append((os.path.join(folder, entry), f.read()))
    return found
