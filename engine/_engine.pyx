# cython: language_level=3, boundscheck=False, wraparound=False
"""Python boundary of the C engine: builds the rs_model from validated weights once, and
translates batches of token ids with the GIL released. Inputs are checked here, so the C
code never sees an id out of range or a malformed option."""
import os

import numpy as np
cimport numpy as cnp

from rnnsearch import source_options
from libc.stdlib cimport calloc, malloc
from libc.string cimport memcpy, memset

from rs_engine cimport *

cnp.import_array()

# the engine's size limits (engine/rs_limits.h); rnnsearch.limits mirrors them
LIMITS = {"layers": RS_MAX_LAYERS, "width": RS_MAX_WIDTH, "vocabulary": RS_MAX_VOCAB,
          "source_length": RS_MAX_SOURCE_LENGTH, "decoding_length": RS_MAX_DECODING_LENGTH,
          "beam": RS_MAX_BEAM, "batch": RS_MAX_BATCH, "block_elements": RS_MAX_BLOCK_ELEMENTS}
MAX_LAYERS = RS_MAX_LAYERS


def _is_memory_mapped(array):
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = getattr(array, "base", None)
    return False
_CELLS = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3}
_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
_BRIDGES = {"zeros": 0, "last": 1, "dense": 2, "mean": 3, "pooling": 4}
_BRIDGE_FROM = {"matching_layer": 0, "top_layer": 1, "all_layers": 2}
_ACTIVATIONS = {"tanh": 0, "relu": 1, "identity": 2}
_LSTM_CELL = {"zeros": 0, "bridged": 1, "copy_hidden": 2}
_SCORES = {"dot": 0, "scaled_dot": 1, "general": 2, "additive": 3, "tanh_dot": 4}
_DECODERS = {"bahdanau": 0, "luong": 1, "none": 2, "conditional": 3}
_STACKING = {"layerwise": 0, "separate": 1, "alternating": 2}
_READOUTS = {"none": 0, "linear": 1, "tanh": 2, "maxout": 3}
_LOCATION_INPUTS = {"previous": 0, "cumulative": 1, "previous_and_cumulative": 2, "history": 3}
_INITIAL_WEIGHTS = {"uniform": 0, "zeros": 1, "first": 2}
_COVERAGE_UPDATES = {"sum": 0, "tanh": 1, "sigmoid": 2, "relu": 3, "softrelu": 4, "gru": 5}
_SOURCE_KINDS = {"ids": 0, "one_hot": 0, "features": 1}   # one-hot sources arrive as ids
_SUBSAMPLE_MODES = {"concat": 0, "stride": 1}


def _norm_split(dict section):
    """Where a GRU's gate normalisation splits: [r; z] | n ("split"), or nowhere."""
    return 2 * section["hidden_size"] if section["layer_norm"] == "split" else 0


def call_buffers(poison=None):
    """For tests: the bytes of freed call buffers the calling thread keeps for its next calls
    (rs_thread_memory.h). poison=True/False turns on/off, for the whole process, filling every
    call buffer handed out with 0xFF bytes (NaN floats, -1 ints) before use."""
    if poison is not None:
        rs_block_poison(1 if poison else 0)
    return rs_block_cached_bytes()


def kernel_isa(str compute_type="float32"):
    """The instruction set the matrix kernels of compute_type run with on this CPU."""
    if compute_type == "int8":
        return rs_int8_isa().decode()
    if compute_type == "bfloat16":
        return rs_bf16_isa().decode()
    return rs_kernel_isa().decode()


def intra_split(int min_macs=0):
    """For tests and benchmarks of intra_threads at batch sizes below the thread count:
    (the products split over threads since the process started, the fewest multiply-adds a
    part of a split product must have, the parts worker threads ran since the process
    started). min_macs >= 1 sets that minimum (rs_split.h, rs_workers.h)."""
    cdef int previous = rs_split_set_min_macs(min_macs)
    return rs_split_count(), previous, rs_workers_parts_on_workers()


def elementwise(str name, x):
    """exp, tanh, sigmoid or log_softmax of a float32 vector with this CPU's kernels (for
    tests)."""
    out = np.array(x, dtype=np.float32).ravel().copy()
    cdef float[::1] v = out
    cdef int n = out.shape[0]
    cdef float[::1] tmp
    if n == 0:
        return out
    if name == "log_softmax":
        tmp = np.empty(n, np.float32)
        top = rs_log_softmax(&v[0], n, &tmp[0])
        if top != top:   # NaN in the input: the engine reports it instead of scoring
            return np.full(n, np.nan, np.float32)
        return out
    if name == "exp":
        rs_vexp(&v[0], n)
    elif name == "tanh":
        rs_vtanh(&v[0], n)
    elif name == "sigmoid":
        rs_vsigmoid(&v[0], n)
    else:
        raise ValueError(name)
    return out


def maxima(x, int chunk):
    """(the maximum of a float32 vector, the maximum of each `chunk` of it) with this CPU's
    kernel (rs_vmax_chunks), for tests."""
    cdef float[::1] v = np.ascontiguousarray(x, dtype=np.float32).ravel()
    cdef int n = v.shape[0]
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    chunks = (n + chunk - 1) // chunk
    out = np.full(max(chunks, 1), np.nan, np.float32)
    cdef float[::1] o = out
    if n == 0:
        return float(rs_vmax_chunks(NULL, 0, chunk, &o[0])), out[:0]
    return float(rs_vmax_chunks(&v[0], n, chunk, &o[0])), out[:chunks]


def torch_topk(values, int k):
    """The indices torch.topk(values, k) returns on CPU, equal values included, as the
    engine reproduces them (rs_topk_torch.h), for tests."""
    cdef float[::1] v = np.ascontiguousarray(values, dtype=np.float32).ravel()
    cdef int n = v.shape[0]
    if not 1 <= k <= n:
        raise ValueError("k must be in [1, len(values)]")
    cdef rs_ranked *work = <rs_ranked *> malloc(sizeof(rs_ranked) * n)
    cdef rs_ranked *out = <rs_ranked *> malloc(sizeof(rs_ranked) * k)
    if work == NULL or out == NULL:
        free(work)
        free(out)
        raise MemoryError()
    rs_torch_topk(&v[0], n, k, work, out)
    indices = [out[i].index for i in range(k)]
    free(work)
    free(out)
    return indices


cdef tuple _test_operands(rs_linear *lin, x, weight, bias):
    """x, W and b as contiguous float32 arrays (b None if not given), and lin pointing at W
    and b: the operands of the kernel tests' products."""
    xa = np.ascontiguousarray(x, dtype=np.float32)
    wa = np.ascontiguousarray(weight, dtype=np.float32)
    ba = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
    memset(lin, 0, sizeof(rs_linear))
    lin.out, lin.input = wa.shape[0], wa.shape[1]
    if wa.size:
        lin.w = <const float *> cnp.PyArray_DATA(wa)
    if ba is not None and ba.size:
        lin.b = <const float *> cnp.PyArray_DATA(ba)
    return xa, wa, ba


def linear_int8(x, weight, bias=None, splits=()):
    """x W^T + b through this CPU's int8 kernel (weights quantized per row; x quantized
    per row and per part between the column offsets `splits`), for tests."""
    cdef rs_linear lin
    operands = _test_operands(&lin, x, weight, bias)
    cdef float[:, ::1] xv = operands[0]
    out = np.zeros((xv.shape[0], lin.out), np.float32)
    cdef float[:, ::1] yv = out
    cdef void *owned = NULL
    if not (xv.shape[0] and lin.out and lin.input):
        return out
    if len(splits) > 3:
        raise ValueError("at most 3 splits")
    for k, at in enumerate(splits):
        lin.qsplit[k] = at
    lin.nqsplit = len(splits)
    if rs_quantize_linear(&lin, &owned):
        raise MemoryError()
    try:
        if rs_gemm_int8(&lin, xv.shape[0], &xv[0, 0], lin.input, &yv[0, 0], lin.out, 0):
            raise MemoryError()
    finally:
        rs_aligned_free(owned)
    return out


def linear_bf16(str isa, x, weight, bias=None, y=None):
    """(y if given, else 0) + x W^T + b through the named bfloat16 kernel ("avx512-bf16",
    "avx512", "avx2", "neon", "portable"; None if this CPU lacks it), weights rounded as at
    load. For the kernel tests."""
    cdef rs_linear lin
    operands = _test_operands(&lin, x, weight, bias)
    cdef float[:, ::1] xv = operands[0]
    if xv.shape[1] != lin.input:
        raise ValueError("x and weight widths differ")
    accumulate = y is not None
    out = np.array(y, dtype=np.float32, order="C") if accumulate else \
        np.zeros((xv.shape[0], lin.out), np.float32)
    cdef float[:, ::1] yv = out
    cdef void *owned = NULL
    if not (xv.shape[0] and lin.out and lin.input):
        return out
    status = rs_bf16_pack_linear(&lin, &owned)
    if status == 2:
        raise ValueError("weight holds NaN or inf (after rounding to bfloat16)")
    if status:
        raise MemoryError()
    try:
        status = rs_gemm_bf16_named(isa.encode(), &lin, xv.shape[0], &xv[0, 0], lin.input,
                                    &yv[0, 0], lin.out, accumulate)
    finally:
        rs_aligned_free(owned)
    if status < 0:
        return None
    if status:
        raise MemoryError()
    return out


def linear_kernel(str isa, x, weight, bias=None, y=None):
    """Run one matrix-product kernel directly: returns (y if given, else 0) + x W^T + b.
    For the kernel tests; None if this CPU lacks the instruction set."""
    cdef rs_gemm_fn fn = rs_gemm_named(isa.encode())
    if fn == NULL:
        return None
    cdef float[:, ::1] xv = np.ascontiguousarray(x, dtype=np.float32)
    cdef float[:, ::1] wv = np.ascontiguousarray(weight, dtype=np.float32)
    if xv.shape[1] != wv.shape[1]:
        raise ValueError("x and weight widths differ")
    accumulate = y is not None
    out = np.array(y, dtype=np.float32, order="C") if accumulate else \
        np.zeros((xv.shape[0], wv.shape[0]), np.float32)
    cdef float[:, ::1] yv = out
    cdef float[::1] bv
    cdef rs_linear lin
    memset(&lin, 0, sizeof(rs_linear))
    lin.out = wv.shape[0]
    lin.input = wv.shape[1]
    lin.w = &wv[0, 0] if wv.size else NULL
    if bias is not None:
        bv = np.ascontiguousarray(bias, dtype=np.float32)
        lin.b = &bv[0] if bv.size else NULL
    cdef float *packed = NULL
    if isa.endswith("-packed") and lin.w != NULL:
        packed = rs_pack_weights(lin.w, lin.out, lin.input)
        if packed == NULL:
            raise MemoryError()
        lin.packed = packed
    if xv.shape[0] and lin.out and lin.input:
        fn(&lin, xv.shape[0], &xv[0, 0], lin.input, &yv[0, 0], lin.out, accumulate, 0, lin.out)
    elif xv.shape[0] and lin.out and not lin.input:
        out += 0 if bias is None else np.asarray(bias, np.float32)
    rs_aligned_free(packed)
    return out


cdef class _TokenReporter:
    """Hands each token the C search reports to a Python callable, taking the GIL only for
    that call. The first exception ends every sentence and is raised after the search."""
    cdef object callback
    cdef object error

    def __cinit__(self, callback):
        self.callback = callback
        self.error = None


cdef int _report_token(void *ctx, int sentence, int step, int token, float log_prob,
                       int is_last) noexcept nogil:
    with gil:
        reporter = <_TokenReporter> ctx
        if reporter.error is not None:
            return 1
        try:
            return 1 if reporter.callback(sentence, step, token, log_prob, is_last != 0) else 0
        except BaseException as error:   # KeyboardInterrupt too: stop, raise it afterwards
            reporter.error = error
            return 1


_NO_IDS = np.zeros(1, np.intc)   # the engine reads no element of it (a count of 0)
_NO_IDS.flags.writeable = False


def _id_matrix(rows, int vocab, str what):
    """Lists of ids -> (ids [n, max(1, longest)] zero-padded, lengths [n]), every id checked
    to be in [0, vocab). Lists or tuples of Python ints (what the Translator passes) are
    copied by typed loops: a call's fixed cost, where NumPy's per-array overheads add up;
    anything else goes through NumPy's conversions (_id_matrix_numpy)."""
    cdef Py_ssize_t n = len(rows), b, k, length, longest = 1
    if type(rows) is not list:
        return _id_matrix_numpy(rows, vocab, what)
    for b in range(n):
        row = rows[b]
        if type(row) is not list and type(row) is not tuple:
            return _id_matrix_numpy(rows, vocab, what)
        length = len(row)
        if length > longest:
            longest = length
    lengths = np.empty(n, dtype=np.intc)
    ids = np.zeros((n, longest), dtype=np.intc)
    cdef int[::1] lv = lengths
    cdef int[:, ::1] iv = ids
    for b in range(n):
        row = rows[b]
        lv[b] = len(row)
        for k in range(lv[b]):
            item = row[k]
            if type(item) is not int:
                return _id_matrix_numpy(rows, vocab, what)
            if not 0 <= item < vocab:
                raise ValueError(f"{what} ids must be in [0, {vocab})")
            iv[b, k] = item
    return ids, lengths


def _int_array(values):
    """Values as a C int array [n]: a list of Python ints by a typed loop (a call's fixed
    cost, where NumPy's conversion of a short list costs more), anything else (or an int
    beyond C int) through NumPy's conversion."""
    cdef Py_ssize_t n, i
    cdef int[::1] view
    if type(values) is list:
        n = len(values)
        out = np.empty(n, dtype=np.intc)
        view = out
        for i in range(n):
            item = values[i]
            if type(item) is not int or not -2147483648 <= item <= 2147483647:
                return np.array(values, dtype=np.intc).reshape(-1)
            view[i] = item
        return out
    return np.array(values, dtype=np.intc).reshape(-1)


def _id_matrix_numpy(rows, int vocab, str what):
    lengths = np.array([len(r) for r in rows], dtype=np.intc)
    ids = np.zeros((len(rows), max(1, int(lengths.max()) if len(rows) else 1)), dtype=np.intc)
    for b, row in enumerate(rows):
        if len(row):
            ids[b, :len(row)] = row
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(f"{what} ids must be in [0, {vocab})")
    return ids, lengths


def _candidate_arrays(candidates, int batch, int vocab):
    """(ids, offsets) of per-sentence candidate lists (rs_candidates), checked: ascending,
    distinct, in [0, vocab), none empty; or (None, None)."""
    if candidates is None:
        return None, None
    if len(candidates) != batch:
        raise ValueError(f"{len(candidates)} candidate lists for {batch} sentences")
    lists = [np.asarray(c, dtype=np.intc).reshape(-1) for c in candidates]
    for c in lists:
        if c.size == 0 or c.min() < 0 or c.max() >= vocab or np.any(np.diff(c) <= 0):
            raise ValueError(f"candidate target ids must be ascending, distinct, in [0, {vocab}) "
                             "and at least one per sentence")
    offsets = np.zeros(batch + 1, dtype=np.uintp)
    np.cumsum([c.size for c in lists], out=offsets[1:])
    return np.ascontiguousarray(np.concatenate(lists), dtype=np.intc), offsets


def _raise_engine_error(str message):
    """An engine failure as the exception the API documents: a bad argument (ValueError),
    memory (MemoryError), or the engine's (EngineError)."""
    if "must be" in message or "needs" in message:
        raise ValueError(message)
    if "out of memory" in message:
        raise MemoryError(message)
    from rnnsearch.errors import EngineError
    raise EngineError(message)


cdef list _hypotheses(rs_result *result, int width, bint with_log_prob=False):
    """(token ids, score, attention [attention rows, width] or None[, log-probability]) of
    each hypothesis."""
    cdef int h, n, rows
    cdef rs_hypothesis *hyp
    out = []
    for h in range(result.count):
        hyp = &result.hyps[h]
        n = hyp.length
        rows = hyp.attention_rows
        attention = None
        if hyp.attention != NULL:
            attention = np.empty((rows, width), dtype=np.float32)
            if rows * width:
                attention[...] = np.asarray(<float[:rows * width]> hyp.attention).reshape(rows, width)
        hypothesis = ([hyp.tokens[k] for k in range(n)], hyp.score, attention)
        out.append(hypothesis + (hyp.log_prob,) if with_log_prob else hypothesis)
    return out


cdef class Engine:
    """The model laid out for the kernels. After __init__ nothing points into the model
    file: matrices are packed or quantized into the engine's own memory (or copied, for the
    portable kernel), every other array is copied, so a model file changed or truncated on
    disk later cannot change or crash a loaded model. Weights are checked for NaN and inf
    on the way (in the packing pass, which reads every matrix anyway)."""
    cdef rs_model model
    cdef rs_copy_generator copy_generator
    cdef list _keep     # arrays the model points into (the engine's own memory)
    cdef list _loading  # arrays read only while loading (views of the model file)
    cdef list _owned    # addresses of packed weight buffers to free
    cdef list _sources  # (start, end, tensor name, memory-mapped) of every weight given
    cdef bint _int8
    cdef bint _bf16
    cdef rs_workers *_pool # intra-sentence threads (rs_workers.h), started on first need
    cdef object _pool_pid # the process that started them

    def __cinit__(self):
        self._pool = NULL
        memset(&self.model, 0, sizeof(rs_model))
        memset(&self.copy_generator, 0, sizeof(rs_copy_generator))
        self._keep = []
        self._loading = []
        self._owned = []
        self._sources = []

    def __dealloc__(self):
        cdef size_t address
        rs_workers_destroy(self._pool)   # joins its workers (no call can be running)
        self._pool = NULL
        for address in self._owned:
            rs_aligned_free(<void *> address)
        self._owned = []

    cdef tuple _source(self, const void *address):
        """(tensor name, memory-mapped) of the weight holding `address`."""
        cdef size_t at = <size_t> address
        for start, end, name, mapped in self._sources:
            if start <= at < end:
                return name, mapped
        return "?", False

    cdef int _pack(self, rs_linear *lin) except -1:
        """Lay out one matrix for the kernel (packed float32 panels, int8 or bfloat16),
        refusing NaN and inf; afterwards the linear no longer points into the model file."""
        cdef float *owned = NULL
        cdef void *qowned = NULL
        cdef int status
        cdef size_t count = <size_t> lin.out * lin.input
        if lin.w == NULL and lin.wq == NULL:
            return 0
        if self._int8:
            status = rs_quantize_linear(lin, &qowned)
        elif self._bf16:
            status = rs_bf16_pack_linear(lin, &qowned)
        else:
            status = rs_pack_linear(lin, &owned)
        if status == 2:
            from rnnsearch.errors import ModelError
            beyond = " (or values beyond bfloat16's range)" if self._bf16 else ""
            raise ModelError(f"model.safetensors: tensor '{self._source(lin.w)[0]}' holds NaN "
                             f"or infinite values{beyond}")
        if status:
            raise MemoryError("out of memory while laying out the weights")
        if qowned != NULL:
            self._owned.append(<size_t> qowned)
        if owned != NULL:
            self._owned.append(<size_t> owned)
        if lin.w != NULL and self._source(lin.w)[1]:
            if owned != NULL or qowned != NULL:
                rs_release_pages(lin.w, count * sizeof(float))
                lin.w = NULL   # packed or quantized: the file's copy is never read again
            else:              # the portable kernel reads W itself: give it its own copy
                lin.w = self._copy(lin.w, count)
        if lin.wq != NULL and self._source(lin.wq)[1]:
            rs_release_pages(lin.wq, count)
            lin.wq = NULL      # laid out for the int8 kernel
        return 0

    cdef float *_allocate(self, size_t count) except NULL:
        """count floats owned by the engine (64-byte aligned), freed with it."""
        cdef float *dst = <float *> rs_aligned_alloc(64, count * sizeof(float) + 64)
        if dst == NULL:
            raise MemoryError("out of memory while copying the weights")
        self._owned.append(<size_t> dst)
        return dst

    cdef float *_copy(self, const float *src, size_t count) except NULL:
        cdef float *dst = self._allocate(count)
        memcpy(dst, src, count * sizeof(float))
        return dst

    cdef int _pack_rnn(self, rs_rnn *rnn) except -1:
        cdef int k
        self._pack(&rnn.ih)
        if rnn.cell == 1 and not rnn.reset_after:
            self._pack(&rnn.hh_rz)
            self._pack(&rnn.hh_n)
            # hh itself is only the source of those two views
            if rnn.hh.w != NULL and self._source(rnn.hh.w)[1]:
                rnn.hh.w = NULL
            if rnn.hh.wq != NULL and self._source(rnn.hh.wq)[1]:
                rnn.hh.wq = NULL
        else:
            self._pack(&rnn.hh)
        for k in range(rnn.ntransitions):
            self._pack(&(<rs_rnn *> rnn.transitions)[k].hh)
        return 0

    cdef int _pack_all(self) except -1:
        """Lay every matrix out once for this CPU's SIMD kernel."""
        cdef rs_model *m = &self.model
        cdef int l, d
        rs_decoder_mark_input_parts(m)
        self._pack(&m.source.input_projection)
        for l in range(m.enc_layers):
            for d in range(2 if m.enc_bidirectional else 1):
                self._pack_rnn(&m.enc[l][d])
            self._pack(&m.source.projection[l])
        for l in range(m.dec_layers):
            self._pack_rnn(&m.dec[l])
            self._pack(&m.bridge_hidden[l])
            self._pack(&m.bridge_cell[l])
        self._pack_rnn(&m.cond_cell)
        for l in range(m.readout_nparts):
            self._pack(&m.readout_parts[l])
        self._pack(&m.attention.key)
        self._pack(&m.attention.query)
        self._pack(&m.attention.value)
        self._pack(&m.attention.gate)
        self._pack(&m.attention.position)
        self._pack(&m.attention.chunk_key)
        self._pack(&m.attention.chunk_query)
        self._pack(&m.pooling.projection)
        self._pack_stateful(&m.attention)
        self._pack(&m.attentional)
        self._pack(&m.readout_layer)
        self._pack(&m.output)
        if m.copy != NULL:
            self._pack(&self.copy_generator.attention.key)
            self._pack(&self.copy_generator.attention.query)
            self._pack(&self.copy_generator.gate)
        return 0

    cdef int _pack_stateful(self, rs_attention *a) except -1:
        """The matrices of the stateful attention types (absent ones are skipped)."""
        self._pack(&a.location.projection)
        self._pack(&a.location.lstm.ih)
        self._pack(&a.location.lstm.hh)
        self._pack(&a.transition)
        self._pack(&a.context_projection)
        self._pack(&a.multi_head.value)
        self._pack(&a.multi_head.output)
        cdef int h
        for h in range(a.multi_head.heads if a.multi_head.location else 0):
            self._pack(&a.multi_head.head_location[h].projection)
        self._pack(&a.coverage.projection)
        self._pack(&a.coverage.memory)
        self._pack(&a.coverage.query)
        self._pack(&a.coverage.previous)
        a.coverage.gru.hh = a.coverage.previous
        return 0

    def __init__(self, dict config, dict tensors, int bos_id, int eos_id,
                 str compute_type="float32", int pad_id=-1):
        """config: normalized config.json; tensors: validated float32 arrays;
        compute_type "int8" quantizes every matrix (per output row) at load, "bfloat16"
        rounds every matrix to bfloat16 (int8 matrices of the file are dequantized first);
        pad_id: the target padding token (models with a copy generator)."""
        if compute_type not in ("float32", "int8", "bfloat16"):
            raise ValueError(f"unknown compute_type {compute_type!r}")
        self._int8 = compute_type == "int8"
        self._bf16 = compute_type == "bfloat16"
        enc, bridge, att, dec = config["encoder"], config["bridge"], config["attention"], config["decoder"]
        if enc["num_layers"] > RS_MAX_LAYERS or dec["num_layers"] > RS_MAX_LAYERS:
            raise ValueError(f"at most {RS_MAX_LAYERS} layers are supported")
        cdef rs_model *m = &self.model
        if "encoder.embedding.weight" in tensors:   # not for feature sources
            m.src_embedding = self._ptr(tensors, "encoder.embedding.weight")
            m.src_vocab, m.src_embedding_size = tensors["encoder.embedding.weight"].shape
        m.enc_layers = enc["num_layers"]
        m.enc_bidirectional = enc["bidirectional"]
        m.enc_merge_sum = enc["merge"] == "sum"
        m.enc_residual = enc["residual"]
        m.enc_hidden = enc["hidden_size"] or 0
        m.enc_width = source_options.rnn_width(enc)
        self._source_stage(config, tensors)
        m.enc_stacking = _STACKING[enc["stacking"]]
        for l in range(enc["num_layers"]):
            for d, name in enumerate(("forward", "backward") if enc["bidirectional"] else ("forward",)):
                self._rnn(&m.enc[l][d], tensors, f"encoder.layers.{l}.{name}", enc)
                self._deep_transition(&m.enc[l][d], tensors, f"encoder.layers.{l}.{name}", enc,
                                      1, enc["cell_depth"])

        m.bridge = _BRIDGES[bridge["type"]]
        m.bridge_from = _BRIDGE_FROM[bridge["from"]]
        m.bridge_activation = _ACTIVATIONS[bridge["activation"]]
        m.lstm_cell = _LSTM_CELL[bridge["lstm_cell"]] if dec["cell"] == "lstm" else 0
        for l in range(dec["num_layers"]):
            m.bridge_hidden[l] = self._linear(tensors, f"bridge.layers.{l}.hidden")
            m.bridge_cell[l] = self._linear(tensors, f"bridge.layers.{l}.cell")
            self._norm(&m.bridge_hidden_norm[l], tensors, f"bridge.layers.{l}.hidden_norm", 0,
                       bridge["layer_norm_eps"])
            self._norm(&m.bridge_cell_norm[l], tensors, f"bridge.layers.{l}.cell_norm", 0,
                       bridge["layer_norm_eps"])
        if enc["pooling"] is not None:
            self._pooling(enc["pooling"], tensors)

        if att is not None:
            self._attention(att, tensors, dec["hidden_size"])

        m.tgt_embedding = self._ptr(tensors, "decoder.embedding.weight")
        m.tgt_vocab, m.tgt_embedding_size = tensors["decoder.embedding.weight"].shape
        m.decoder = _DECODERS[dec["type"]]
        m.dec_layers = dec["num_layers"]
        m.dec_hidden = dec["hidden_size"]
        m.dec_residual = dec["residual"]
        m.query_first_layer = dec["attention_query"] == "first_layer"
        m.start_zeros = dec["start_embedding"] == "zeros"
        for l in range(dec["num_layers"]):
            self._rnn(&m.dec[l], tensors, f"decoder.layers.{l}", dec)
            if dec["type"] != "conditional" or l > 0:
                self._deep_transition(&m.dec[l], tensors, f"decoder.layers.{l}", dec, 1,
                                      dec["cell_depth"])
        if dec["type"] == "conditional" and dec["base_cell_depth"] > 1:
            # layer 0: GRU 1 (decoder.layers.0), attention, GRU 2 (depth.1), transitions
            self._rnn(&m.cond_cell, tensors, "decoder.layers.0.depth.1", dec)
            self._deep_transition(&m.cond_cell, tensors, "decoder.layers.0", dec, 2,
                                  dec["base_cell_depth"])
        m.input_feeding = dec["type"] == "luong" and dec["input_feeding"]
        m.attentional = self._linear(tensors, "decoder.attentional")
        m.attentional_activation = _ACTIVATIONS[dec["attentional_activation"]]
        m.attentional_width = m.attentional.out if RS_HAS_LINEAR(m.attentional) else 0
        m.feed_context = m.input_feeding and dec["feed"] == "context"
        m.feed_width = m.attentional_width
        if m.feed_context:
            m.feed_width = (m.attention.context_projection.out
                            if RS_HAS_LINEAR(m.attention.context_projection)
                            else m.attention.context_width)
        m.readout = _READOUTS[dec["readout"]] if dec["type"] in ("bahdanau", "conditional") else 0
        inputs = dec["readout_inputs"]
        m.readout_state = "state" in inputs
        m.readout_context = "context" in inputs
        m.readout_embedding = "embedding" in inputs
        m.readout_layer = self._linear(tensors, "decoder.readout")
        if dec["readout_layer_norm"]:
            self._readout_parts(tensors, dec, att)
        m.output = self._linear(tensors, "decoder.output")
        if config.get("copy") is not None:
            self._copy_generator(config["copy"], tensors, m.output.input, pad_id)
        m.bos_id = bos_id
        m.eos_id = eos_id
        self._pack_all()
        self._loading = []   # the model file is not referenced any more

    cdef int _source_stage(self, dict config, dict tensors) except -1:
        """What the encoder reads (embeddings or frames) and how it reshapes time."""
        cdef rs_source_stage *s = &self.model.source
        enc = config["encoder"]
        s.kind = _SOURCE_KINDS[config["source"]["kind"]]
        s.feature_size = config["source"]["feature_size"] or 0
        s.input_projection = self._linear(tensors, "encoder.input_projection")
        if enc["input_projection"] is not None:
            s.input_activation = _ACTIVATIONS[enc["input_projection"]["activation"]]
        else:
            s.input_activation = _ACTIVATIONS["identity"]
        s.width = source_options.input_width(config)
        s.mode = _SUBSAMPLE_MODES[enc["subsample_mode"]]
        for index, factor in enumerate(source_options.factors(enc)):
            s.factors[index] = factor
        for l in range(enc["num_layers"]):
            s.projection[l] = self._linear(tensors, f"encoder.layers.{l}.projection")
        s.projection_activation = _ACTIVATIONS[
            enc["projection"]["activation"] if enc["projection"] else "identity"]
        self.model.memory_width = source_options.memory_width(config)
        return 0

    cdef int _attention(self, dict att, dict tensors, int query_width) except -1:
        self._fill_attention(&self.model.attention, att, tensors, "attention", query_width)
        self._attention_options(att, tensors)
        cdef rs_attention *a = &self.model.attention
        self._norm(&a.key_norm, tensors, "attention.key_norm", 0, att["layer_norm_eps"])
        self._norm(&a.query_norm, tensors, "attention.query_norm", 0, att["layer_norm_eps"])
        a.scaling = att["scaling"]
        a.context_projection = self._linear(tensors, "attention.context")
        self._stateful_attention(att, tensors)
        return 0

    cdef int _fill_attention(self, rs_attention *a, dict att, dict tensors, str prefix,
                             int query_width) except -1:
        a.ops = rs_attention_named(att["type"].encode())
        if a.ops == NULL:
            raise ValueError(f"attention type {att['type']!r} is not in this engine")
        a.score = _SCORES[att["score"]]
        a.dot_scale = self._ptr(tensors, prefix + ".scale")[0] if prefix + ".scale" in tensors \
            else 1.0
        a.key = self._linear(tensors, prefix + ".key")
        a.query = self._linear(tensors, prefix + ".query")
        if prefix + ".v" in tensors:
            a.v = self._ptr(tensors, prefix + ".v")
        a.score_relu = att.get("score_activation") == "relu"
        a.query_width = query_width
        a.memory_width = self.model.memory_width
        a.scaling = 1.0   # softmax(scaling * e); _attention sets the model's own
        return 0

    cdef int _stateful_attention(self, dict att, dict tensors) except -1:
        """The location, coverage and forward types' options and weights
        (stateful_attention.py)."""
        cdef rs_attention *a = &self.model.attention
        cdef int A = a.key_width
        if att["type"] in ("location", "forward"):
            loc = att["location"]
            a.location.input = _LOCATION_INPUTS[loc["input"]]
            a.location.channels, a.location.inputs, a.location.kernel = \
                tensors["attention.location.conv"].shape
            a.location.conv = self._ptr(tensors, "attention.location.conv")
            a.location.initial = _INITIAL_WEIGHTS[loc["initial"]]
            a.location.recurrent = loc["recurrent"]
            if loc["recurrent"]:
                self._rnn(&a.location.lstm, tensors, "attention.location.lstm",
                          {"cell": "lstm", "gru_reset_after": True, "hidden_size": A})
            else:
                a.location.projection = self._linear(tensors, "attention.location.projection")
        if att["type"] == "multi_head":
            self._multi_head(att, tensors)
        if att["type"] == "forward":
            a.transition = self._linear(tensors, "attention.forward.transition")
        elif att["type"] == "coverage":
            cov = att["coverage"]
            a.coverage.update = _COVERAGE_UPDATES[cov["update"]]
            a.coverage.size = cov["size"]
            a.coverage.initial = _INITIAL_WEIGHTS[cov["initial"]]
            a.coverage.projection = self._linear(tensors, "attention.coverage")
            if cov["update"] != "sum":
                a.coverage.memory = self._linear(tensors, "attention.coverage.memory")
                a.coverage.query = self._linear(tensors, "attention.coverage.query")
                a.coverage.previous = self._linear(tensors, "attention.coverage.previous")
                a.coverage.attention = self._ptr(tensors, "attention.coverage.attention")
                a.coverage.gru.cell = _CELLS["gru"]
                a.coverage.gru.reset_after = 1
                a.coverage.gru.hidden = cov["size"]
        return 0

    cdef int _multi_head(self, dict att, dict tensors) except -1:
        cdef rs_multi_head *m = &self.model.attention.multi_head
        cdef rs_location *L
        options = att["multi_head"]
        m.heads = options["heads"]
        m.tanh_dot = att["score"] == "tanh_dot"
        if options["value_size"] is not None:
            m.value_size = options["value_size"]
            m.value = self._linear(tensors, "attention.heads.value")
            m.output = self._linear(tensors, "attention.heads.output")
        m.location = att["location"] is not None
        for h in range(m.heads if m.location else 0):
            L = &m.head_location[h]
            conv = f"attention.heads.{h}.location.conv"
            L.channels, L.inputs, L.kernel = tensors[conv].shape
            L.conv = self._ptr(tensors, conv)
            L.initial = _INITIAL_WEIGHTS[att["location"]["initial"]]
            L.projection = self._linear(tensors, f"attention.heads.{h}.location.projection")

    cdef int _copy_generator(self, dict copy, dict tensors, int hidden_width, int pad_id) except -1:
        """OpenNMT-py's copy generator: its switch, and its own copy attention unless it
        reuses the decoder's (queried with the vector the output layer reads)."""
        cdef rs_copy_generator *g = &self.copy_generator
        if not 0 <= pad_id < self.model.tgt_vocab:
            raise ValueError("a copy generator needs the target padding token")
        g.pad_id = pad_id
        g.gate = self._linear(tensors, "copy.gate")
        if not copy["reuse_attention"]:
            self._fill_attention(&g.attention, {"type": "global", "score": copy["score"]},
                                 tensors, "copy.attention", hidden_width)
            # a plain global attention: none of _attention_options' extras
            g.attention.key_width = g.attention.key.out if RS_HAS_LINEAR(g.attention.key) \
                else g.attention.memory_width
            g.attention.context_width = g.attention.memory_width
        self.model.copy = g
        return 0

    cdef int _norm(self, rs_norm *n, dict tensors, str prefix, int split, float eps) except -1:
        """Layer normalisation `prefix`.weight / .bias, if the model has it."""
        memset(n, 0, sizeof(rs_norm))
        if prefix + ".weight" not in tensors:
            return 0
        n.gain = self._ptr(tensors, prefix + ".weight")
        if prefix + ".bias" in tensors:
            n.bias = self._ptr(tensors, prefix + ".bias")
        n.split = split
        n.eps = eps
        return 0

    cdef int _deep_transition(self, rs_rnn *rnn, dict tensors, str prefix, dict section,
                              int first, int depth) except -1:
        """The cells `prefix`.depth.{first..depth-1} (no input) run after `rnn`."""
        cdef int count = depth - first, k
        if count <= 0:
            return 0
        # engine-owned like the weights (freed with rs_aligned_free)
        cdef rs_rnn *cells = <rs_rnn *> self._allocate(
            (count * sizeof(rs_rnn) + sizeof(float) - 1) // sizeof(float))
        memset(cells, 0, count * sizeof(rs_rnn))
        H = section["hidden_size"]
        for k in range(count):
            name = f"{prefix}.depth.{first + k}"
            cells[k].cell = _CELLS[section["cell"]]
            cells[k].reset_after = 1
            cells[k].hidden = H
            self._weight(&cells[k].hh, tensors, name + ".weight_hh")
            if tensors.get(name + ".bias_hh") is not None:
                cells[k].hh.b = self._ptr(tensors, name + ".bias_hh")
            # the input part of a cell without input: its constant bias_ih, or zeros
            cells[k].ih.out = 3 * H
            cells[k].ih.b = self._floats(tensors.get(name + ".bias_ih",
                                                     np.zeros(3 * H, np.float32)),
                                         name + ".bias_ih")
            self._norm(&cells[k].norm_hh, tensors, name + ".norm_hh", _norm_split(section),
                       section["layer_norm_eps"])
        rnn.transitions = cells
        rnn.ntransitions = count
        return 0

    cdef int _readout_parts(self, dict tensors, dict dec, dict att) except -1:
        """The readout as one product per input part (each normalised): columns of
        decoder.readout.weight, with decoder.readout_norm.*[k]."""
        cdef rs_model *m = &self.model
        widths = {"state": dec["hidden_size"], "context": m.attention.context_width,
                  "embedding": dec["embedding_size"]}
        weight = tensors["decoder.readout.weight"]
        scale = tensors.get("decoder.readout.weight_scale")
        gains = tensors["decoder.readout_norm.weight"]
        biases = tensors.get("decoder.readout_norm.bias")
        input_bias = tensors.get("decoder.readout_norm.input_bias")
        start = 0
        m.readout_layer.w = NULL  # the products are the parts'
        m.readout_layer.wq = NULL
        for k, name in enumerate(dec["readout_inputs"]):
            part = {"decoder.readout.weight":
                    np.ascontiguousarray(weight[:, start:start + widths[name]])}
            if scale is not None:
                part["decoder.readout.weight_scale"] = scale
            start += widths[name]
            self._weight(&m.readout_parts[k], part, "decoder.readout.weight")
            if input_bias is not None:
                m.readout_parts[k].b = self._floats(input_bias[k],
                                                    "decoder.readout_norm.input_bias")
            m.readout_norm[k].gain = self._floats(gains[k], "decoder.readout_norm.weight")
            if biases is not None:
                m.readout_norm[k].bias = self._floats(biases[k], "decoder.readout_norm.bias")
            m.readout_norm[k].eps = dec["readout_layer_norm_eps"]
        m.readout_nparts = len(dec["readout_inputs"])
        return 0

    cdef int _attention_options(self, dict att, dict tensors) except -1:
        """hard, gate, key_value and the local / monotonic / mocha weights
        (docs/model-format.md, "attention"); like every weight, copied and checked for NaN
        and inf (_ptr, _scalar)."""
        cdef rs_attention *a = &self.model.attention
        kv = att["key_value"] or {}
        a.key_split = kv.get("split") or 0
        key_in = a.key_split or a.memory_width
        a.key_width = a.key.out if RS_HAS_LINEAR(a.key) else key_in
        a.value = self._linear(tensors, "attention.value")
        a.context_width = a.value.out if RS_HAS_LINEAR(a.value) else a.memory_width - a.key_split
        a.hard = att["hard"]
        if att["gate"]:   # one product over the block's rows, packed like every linear
            a.gate = self._linear(tensors, "attention.gate")
        local = att["local"]
        if local is not None:
            a.local_predictive = local["mode"] == "predictive"
            a.local_window = local["window"]
            a.local_gaussian = local["gaussian"]
            a.local_round = local["center"] == "round"
            a.local_zero_pad = local["edges"] == "zero_pad"
            if a.local_predictive:
                a.position = self._linear(tensors, "attention.position")
                a.position_v = self._ptr(tensors, "attention.position.v")
                a.position_v_bias = self._scalar(tensors, "attention.position.v_bias")
        if att["type"] in ("monotonic", "mocha"):
            a.energy_bias = self._scalar(tensors, "attention.energy_bias")
            if "attention.energy_gain" in tensors:  # Raffel et al. 2017, eq. 16: g v / |v|
                v = tensors.get("attention.v")
                v = np.ones(a.key_width, np.float32) if v is None else np.asarray(v, np.float32)
                gain = self._scalar(tensors, "attention.energy_gain")
                norm = float(np.sqrt(np.sum(v.astype(np.float64) ** 2)))
                if not (norm > 0 and np.isfinite(norm)):
                    raise ValueError("attention.energy_gain: g v / |v| needs a finite gain and "
                                     f"a finite, non-zero attention.v (|v| = {norm})")
                a.v = self._floats((gain * v / norm).astype(np.float32), "attention.v")
        if att["type"] == "mocha":
            a.chunk_size = att["mocha"]["chunk_size"]
            a.chunk_key = self._linear(tensors, "attention.chunk.key")
            a.chunk_query = self._linear(tensors, "attention.chunk.query")
            a.chunk_v = self._ptr(tensors, "attention.chunk.v")
        return 0

    cdef int _pooling(self, dict pooling, dict tensors) except -1:
        cdef rs_pooling *p = &self.model.pooling
        p.rows = pooling["rows"]
        p.size = pooling["size"]
        p.projection = self._linear(tensors, "encoder.pooling.projection")
        p.query = self._floats(self._dequantized(tensors, "encoder.pooling.query.weight"),
                               "encoder.pooling.query.weight")
        return 0

    def _dequantized(self, dict tensors, str name):
        """A matrix the engine reads as float32 rows (not through a kernel): an int8 one is
        dequantized with its per-row scales."""
        weight = tensors[name]
        if weight.dtype == np.int8:
            return weight.astype(np.float32) * tensors[name + "_scale"][:, None]
        return weight

    cdef float _scalar(self, dict tensors, str name, float default=0.0) except? -1:
        """A one-element tensor's value (checked like every weight), or default without it."""
        return self._ptr(tensors, name)[0] if name in tensors else default

    cdef const float *_ptr(self, dict tensors, str name) except NULL:
        """Tensor `name` as float32 the engine reads while translating (embeddings, biases,
        ...): see _floats."""
        return self._floats(tensors[name], name)

    cdef const float *_floats(self, array, str name) except NULL:
        """A float32 array the engine reads while translating: always in the engine's own
        memory, aligned, and checked for NaN and inf (copied and checked in one pass; the
        file's pages are released after). name: the tensor it comes from, for errors."""
        array = np.asarray(array)
        if array.dtype != np.float32:
            raise TypeError(f"weight '{name}' must be float32")
        cdef size_t count = <size_t> array.size
        if count == 0:   # a valid pointer all the same
            array = np.zeros(1, np.float32)
        mapped = _is_memory_mapped(array)
        if not array.flags.c_contiguous or array.ctypes.data % 4:
            array, mapped = np.ascontiguousarray(array).copy(), False
        cdef cnp.ndarray source = array
        # the copy goes where the packed weights go (not a NumPy array: NumPy asks for
        # huge pages, which a busy machine may have to compact memory for)
        cdef float *kept = self._allocate(count) if mapped else NULL
        if rs_copy_finite(kept, <const float *> cnp.PyArray_DATA(source), count) < count:
            from rnnsearch.errors import ModelError
            raise ModelError(f"model.safetensors: tensor '{name}' holds NaN or infinite values")
        if not mapped:
            self._keep.append(array)
            return <const float *> cnp.PyArray_DATA(source)
        rs_release_pages(cnp.PyArray_DATA(source), count * sizeof(float))
        return kept

    cdef const void *_matrix(self, array, str name) except NULL:
        """A matrix to be laid out by _pack: may point into the model file until then."""
        cdef cnp.ndarray arr = np.ascontiguousarray(array)
        mapped = _is_memory_mapped(arr)
        (self._loading if mapped else self._keep).append(arr)
        start = <size_t> cnp.PyArray_DATA(arr)
        self._sources.append((start, start + <size_t> arr.nbytes, name, mapped))
        return <const void *> cnp.PyArray_DATA(arr)

    cdef int _weight(self, rs_linear *lin, dict tensors, str name) except -1:
        """Point lin at matrix `name`: float32, or int8 with per-row scales `name_scale`
        (laid out for the int8 kernel at pack time, or dequantized for float32 and bfloat16
        compute)."""
        weight = tensors[name]
        lin.out, lin.input = weight.shape
        if weight.dtype != np.int8:
            lin.w = <const float *> self._matrix(weight, name)
            return 0
        scale = tensors[name + "_scale"]
        if not self._int8:
            lin.w = <const float *> self._matrix(weight.astype(np.float32) * scale[:, None], name)
            return 0
        lin.wq = <const signed char *> self._matrix(weight, name)
        lin.wq_scale = self._ptr(tensors, name + "_scale")
        return 0

    cdef rs_linear _linear(self, dict tensors, str prefix) except *:
        cdef rs_linear lin
        memset(&lin, 0, sizeof(rs_linear))
        if tensors.get(prefix + ".weight") is None:
            return lin
        self._weight(&lin, tensors, prefix + ".weight")
        if tensors.get(prefix + ".bias") is not None:
            lin.b = self._ptr(tensors, prefix + ".bias")
        return lin

    cdef int _rnn(self, rs_rnn *rnn, dict tensors, str prefix, dict section) except -1:
        cdef rs_linear lin
        rnn.cell = _CELLS[section["cell"]]
        rnn.reset_after = section["gru_reset_after"]
        rnn.hidden = section["hidden_size"]
        for part in ("ih", "hh"):
            memset(&lin, 0, sizeof(rs_linear))
            self._weight(&lin, tensors, f"{prefix}.weight_{part}")
            if tensors.get(f"{prefix}.bias_{part}") is not None:
                lin.b = self._ptr(tensors, f"{prefix}.bias_{part}")
            if part == "ih":
                rnn.ih = lin
                rnn.input = lin.input
            else:
                rnn.hh = lin
        # views for GRU without reset_after: W_h{r,z} (rows 0..2H) and W_hn (rows 2H..3H)
        cdef int H = rnn.hidden
        cdef size_t first_n = <size_t> 2 * H * H
        rnn.hh_rz = rnn.hh
        rnn.hh_rz.out = 2 * H
        rnn.hh_n = rnn.hh
        rnn.hh_n.out = H
        rnn.hh_n.w = rnn.hh.w + first_n if rnn.hh.w != NULL else NULL
        rnn.hh_n.wq = rnn.hh.wq + first_n if rnn.hh.wq != NULL else NULL
        rnn.hh_n.wq_scale = rnn.hh.wq_scale + 2 * H if rnn.hh.wq_scale != NULL else NULL
        rnn.hh_n.b = rnn.hh.b + 2 * H if rnn.hh.b != NULL else NULL
        if section["cell"] == "gru":
            split = _norm_split(section)
            self._norm(&rnn.norm_ih, tensors, f"{prefix}.norm_ih", split, section["layer_norm_eps"])
            self._norm(&rnn.norm_hh, tensors, f"{prefix}.norm_hh", split, section["layer_norm_eps"])
        return 0

    @property
    def source_vocab_size(self):
        return self.model.src_vocab

    def int8_input_parts(self):
        """Where the int8 kernel starts a new activation scale, per decoder matrix that has
        any (tensor name -> column offsets), for tests."""
        cdef rs_model *m = &self.model
        cdef rs_linear *linears[3]
        linears[0], linears[1], linears[2] = &m.dec[0].ih, &m.attentional, &m.readout_layer
        parts = {}
        for index, name in enumerate(("decoder.layers.0.ih", "decoder.attentional",
                                      "decoder.readout")):
            if RS_HAS_LINEAR(linears[index][0]) and linears[index].nqsplit:
                parts[name] = [linears[index].qsplit[k] for k in range(linears[index].nqsplit)]
        return parts

    @property
    def pooled_rows(self):
        """encoder.pooling's rows (0: the model has no pooling)."""
        return self.model.pooling.rows

    def decoder_block_floats(self, int rows, int max_source):
        """A lower bound of the floats a decoder block of `rows` rows over sources of
        max_source positions allocates (rs_decoder_block_floats): the attention type's
        state and scratch included. For the memory estimate (rnnsearch.limits)."""
        if rows < 0 or max_source < 0:
            raise ValueError("rows and max_source must be >= 0")
        cdef size_t n = rs_decoder_block_floats(&self.model, rows, max_source)
        return None if n == <size_t>-1 else int(n)

    def encode(self, list sources, bint return_weights=False):
        """Sentence embeddings of non-empty sources (lists of ids): float32 [batch, rows,
        D_m], and with return_weights the pooling weights [batch, rows, longest source]."""
        cdef int batch = len(sources)
        if self.model.pooling.rows == 0:
            raise ValueError("this model has no encoder.pooling to embed sentences with")
        if batch == 0:
            empty = np.zeros((0, self.model.pooling.rows, self.model.memory_width), np.float32)
            return (empty, np.zeros((0, self.model.pooling.rows, 1), np.float32)) \
                if return_weights else empty
        ids_np, lengths_np = _id_matrix(sources, self.model.src_vocab, "source")
        if lengths_np.min() < 1:
            raise ValueError(f"source {int(np.argmin(lengths_np))} is empty: there is nothing "
                             "to pool")
        cdef int stride = ids_np.shape[1]
        cdef int rows = self.model.pooling.rows, width = self.model.memory_width
        out = np.zeros((batch, rows, width), np.float32)
        weights = np.zeros((batch, rows, stride), np.float32)
        cdef int[:, ::1] ids = ids_np
        cdef int[::1] lengths = lengths_np
        cdef float[:, :, ::1] out_view = out
        cdef float[:, :, ::1] weights_view = weights
        cdef char err[512]
        err[0] = 0
        cdef int status = 0
        with nogil:
            status = rs_embed(&self.model, batch, &ids[0, 0], stride, &lengths[0],
                              &out_view[0, 0, 0], &weights_view[0, 0, 0], err, sizeof(err))
        if status:
            _raise_engine_error(err.decode("utf-8", "replace"))
        return (out, weights) if return_weights else out

    def _suppressed(self, suppress):
        """The suppressed target ids, checked (a non-empty array and the count)."""
        if isinstance(suppress, (tuple, list)) and not suppress:
            # the usual case, on every call: no array to build
            return _NO_IDS, 0
        suppress_np = np.array(sorted(set(suppress)), dtype=np.intc).reshape(-1)
        if suppress_np.size and (suppress_np.min() < 0 or suppress_np.max() >= self.model.tgt_vocab):
            raise ValueError(f"suppressed ids must be in [0, {self.model.tgt_vocab})")
        if self.model.eos_id in suppress_np:
            raise ValueError("the end-of-sentence token cannot be suppressed")
        return (suppress_np if suppress_np.size else np.zeros(1, np.intc)), suppress_np.size

    def _prefixes(self, prefixes, int batch):
        """(prefix matrix, lengths) of the target prefixes, checked, or (None, None)."""
        if prefixes is None:
            return None, None
        if len(prefixes) != batch:
            raise ValueError(f"{len(prefixes)} target prefixes for {batch} sentences")
        prefix_np, prefix_lengths_np = _id_matrix(prefixes, self.model.tgt_vocab, "prefix")
        if np.any(prefix_np[np.arange(prefix_np.shape[1]) < prefix_lengths_np[:, None]]
                  == self.model.eos_id):
            raise ValueError("a target prefix cannot contain the end-of-sentence token")
        return prefix_np, prefix_lengths_np

    cdef int _options(self, rs_options *opt, int beam_size, int num_hypotheses, int min_length,
                      int max_length, float length_penalty, float coverage_penalty,
                      bint normalize_scores, bint return_attention, int threads,
                      bint shrinking_beam, float length_normalization, float word_penalty,
                      float max_length_factor, bint eos_attention, attention_constraint,
                      cnp.ndarray suppress_np, int num_suppress, prefix_np,
                      prefix_lengths_np, _TokenReporter reporter) except -1:
        """Fill opt; the arrays and the reporter must outlive the call that reads opt.
        attention_constraint: None or (backward, forward) windows around the previous
        step's most attended position."""
        cdef cnp.ndarray prefix, prefix_lengths
        memset(opt, 0, sizeof(rs_options))
        if reporter is not None:
            opt.on_token = _report_token
            opt.on_token_ctx = <void *> reporter
        opt.beam_size = beam_size
        opt.num_hypotheses = num_hypotheses
        opt.min_length = min_length
        opt.max_length = max_length
        opt.length_penalty = length_penalty
        opt.coverage_penalty = coverage_penalty
        opt.normalize_scores = normalize_scores
        opt.shrinking_beam = shrinking_beam
        opt.length_exponent = length_normalization
        opt.word_penalty = word_penalty
        opt.max_length_factor = max_length_factor
        opt.eos_attention = eos_attention
        opt.return_attention = return_attention
        opt.threads = threads
        opt.constrain = attention_constraint is not None
        if attention_constraint is not None:
            opt.constraint_backward, opt.constraint_forward = attention_constraint
        opt.suppress = <const int *> cnp.PyArray_DATA(suppress_np)
        opt.num_suppress = num_suppress
        opt.prefix = NULL
        opt.prefix_lengths = NULL
        opt.prefix_stride = 0
        if prefix_np is not None:
            prefix, prefix_lengths = prefix_np, prefix_lengths_np
            opt.prefix = <const int *> cnp.PyArray_DATA(prefix)
            opt.prefix_lengths = <const int *> cnp.PyArray_DATA(prefix_lengths)
            opt.prefix_stride = prefix_np.shape[1]
        return 0

    def translate(self, list sources, **options):
        """sources: list of lists of source ids. options (all optional, see _decode):
        beam_size, num_hypotheses, min_length, max_length, length_penalty,
        coverage_penalty, normalize_scores, return_attention, threads, suppress, prefixes,
        on_token, shrinking_beam, length_normalization, word_penalty, max_length_factor,
        eos_attention, return_log_prob, attention_constraint. Returns, per sentence, a list
        of (token ids, score, attention array or None), best first; with return_log_prob,
        (token ids, score, attention, sum of log-probabilities)."""
        if self.model.source.kind != 0:
            raise ValueError("this model reads feature frames, not token ids "
                             "(translate_features)")
        if not sources:
            return []
        ids_np, lengths_np = _id_matrix(sources, self.model.src_vocab, "source")
        return self._decode(ids_np, None, lengths_np, **options)

    def translate_features(self, list sources, **options):
        """sources: list of float32 arrays [T, F] of finite frames (checked by the caller,
        rnnsearch.features); options as translate. Attention rows have one column per
        memory position."""
        if self.model.source.kind != 1:
            raise ValueError("this model reads token ids, not feature frames (translate)")
        if not sources:
            return []
        cdef int F = self.model.source.feature_size
        for source in sources:
            if not (isinstance(source, np.ndarray) and source.dtype == np.float32
                    and source.ndim == 2 and source.shape[1] == F and source.shape[0] >= 1):
                raise ValueError(f"feature sources must be float32 arrays [T >= 1, {F}]")
        lengths_np = np.array([s.shape[0] for s in sources], dtype=np.intc)
        frames_np = np.zeros((len(sources), int(lengths_np.max()), F), dtype=np.float32)
        for b, source in enumerate(sources):
            frames_np[b, :source.shape[0]] = source
        return self._decode(None, frames_np, lengths_np, **options)

    def _decode(self, ids_np, frames_np, lengths_np, int beam_size=1, int num_hypotheses=1,
                int min_length=0, int max_length=200, float length_penalty=0.0,
                float coverage_penalty=0.0, bint normalize_scores=False,
                bint return_attention=False, int threads=1, suppress=(), prefixes=None,
                on_token=None, bint shrinking_beam=False, float length_normalization=0.0,
                float word_penalty=0.0, float max_length_factor=0.0, bint eos_attention=False,
                bint return_log_prob=False, attention_constraint=None, candidates=None):
        """Run the search over ids [B, S] or frames [B, S, F] (one of them None).
        suppress: target ids never to produce (not EOS); prefixes: None, or per sentence a
        list of target ids to force first (not EOS); on_token (beam_size 1 only): called as
        on_token(sentence, step, token id, log_prob, is_last) after every step, a true
        return ends that sentence; attention_constraint: None or (backward, forward)
        windows around the previous step's most attended position; candidates: None, or
        per sentence the ascending target ids it is decoded over (a vocabulary map,
        rs_vmap.h). The other options: rs_options in rs_model.h."""
        cdef int batch = lengths_np.shape[0]
        suppress_np, num_suppress = self._suppressed(suppress)
        prefix_np, prefix_lengths_np = self._prefixes(prefixes, batch)
        cdef rs_options opt
        cdef _TokenReporter reporter = _TokenReporter(on_token) if on_token is not None else None
        self._options(&opt, beam_size, num_hypotheses, min_length, max_length, length_penalty,
                      coverage_penalty, normalize_scores, return_attention, threads,
                      shrinking_beam, length_normalization, word_penalty, max_length_factor,
                      eos_attention, attention_constraint, suppress_np, num_suppress,
                      prefix_np, prefix_lengths_np, reporter)
        if threads > batch:
            opt.pool = self._intra_pool(threads)
        cdef rs_candidates vmap
        cand_ids_np, cand_offsets_np = _candidate_arrays(candidates, batch, self.model.tgt_vocab)
        if cand_ids_np is not None:
            vmap.ids = <const int *> cnp.PyArray_DATA(cand_ids_np)
            vmap.offsets = <const size_t *> cnp.PyArray_DATA(cand_offsets_np)
            opt.candidates = &vmap
        cdef int[::1] lengths = lengths_np
        cdef int[:, ::1] ids
        cdef float[:, :, ::1] frames
        cdef int stride
        cdef rs_result *results = <rs_result *> malloc(sizeof(rs_result) * batch)
        if results == NULL:
            raise MemoryError()
        cdef char err[512]
        err[0] = 0
        cdef int status
        if ids_np is not None:
            ids, stride = ids_np, ids_np.shape[1]
            with nogil:
                status = rs_translate(&self.model, &opt, batch, &ids[0, 0], stride,
                                      &lengths[0], results, err, sizeof(err))
        else:
            frames, stride = frames_np, frames_np.shape[1]
            with nogil:
                status = rs_translate_features(&self.model, &opt, batch, &frames[0, 0, 0],
                                               stride, &lengths[0], results, err, sizeof(err))
        return _collect(results, batch, status, err, reporter, return_log_prob)

    cdef rs_workers *_intra_pool(self, int threads) except NULL:
        """The pool a call with fewer sentences than `threads` splits its products over,
        grown to `threads` (under the GIL, so never by two calls at once)."""
        if self._pool != NULL and self._pool_pid != os.getpid():
            self._pool = NULL   # a forked child: its copy of the pool has no threads
        if self._pool == NULL:
            self._pool_pid = os.getpid()
            self._pool = rs_workers_create()
            if self._pool == NULL:
                raise MemoryError()
        rs_workers_reserve(self._pool, threads)
        return self._pool

    def translate_opennmt(self, list sources, dict options, ignore=(), seeds=None,
                          copy=None, draws=None, dict stats=None):
        """One OpenNMT-py batch with OpenNMT-py's own search (rs_search_opennmt.h).
        sources: source id lists in the batch's order (none empty); options: the fields of
        rs_onmt_options; ignore: target ids -ignore_when_blocking spares; seeds: one per
        sentence (sampling); copy: (source maps, collapse lists, word counts) of the
        sentences' dynamic vocabularies for a model with a copy generator. Returns, per
        sentence, (attention width, [(ids, score, attention or None, attention cut)]).
        draws: per sentence, the uniform draws sampling uses instead of its own.
        stats: a dict whose "decoded_rows" becomes the rows the decoder stepped (the
        batch's work, which benchmarks turn into floors)."""
        if self.model.source.kind != 0:
            raise ValueError("search='opennmt' needs token sources; this model reads feature "
                             "frames")
        cdef int batch = len(sources)
        if batch == 0:
            return []
        for source in sources:
            if len(source) < 1:
                raise ValueError("an OpenNMT-py batch cannot hold an empty source")
        ids_np, lengths_np = _id_matrix(sources, self.model.src_vocab, "source")
        cdef int stride = ids_np.shape[1]
        cdef rs_onmt_options opt
        memset(&opt, 0, sizeof(rs_onmt_options))
        opt.version = options["version"]
        opt.beam_size = options["beam_size"]
        opt.n_best = options["n_best"]
        opt.min_length = options["min_length"]
        max_np = _int_array(options["max_lengths"])
        if max_np.size != batch:
            raise ValueError("one max_length per sentence")
        cdef int[::1] max_view = max_np
        opt.max_lengths = &max_view[0]
        opt.length_penalty = options["length_penalty"]
        opt.alpha = options["alpha"]
        opt.coverage_penalty = options["coverage_penalty"]
        opt.beta = options["beta"]
        opt.stepwise_penalty = options["stepwise_penalty"]
        opt.block_ngram_repeat = options["block_ngram_repeat"]
        opt.ratio = options["ratio"]
        opt.ban_unk = options["ban_unk"]
        opt.unk_id = options["unk_id"]
        opt.sampling = options["sampling"]
        opt.top_k = options["top_k"]
        opt.top_p = options["top_p"]
        opt.temperature = options["temperature"]
        opt.per_sentence = options["per_sentence"]
        opt.return_attention = options["return_attention"]
        if not 0 <= opt.unk_id < self.model.tgt_vocab:
            raise ValueError("the unknown-word id must be a target id")
        ignore_np = _int_array(sorted(set(ignore)))
        cdef int[::1] ignore_view = ignore_np if ignore_np.size else np.zeros(1, np.intc)
        opt.ignore_ids = &ignore_view[0]
        opt.num_ignore = ignore_np.size
        seeds_np = np.zeros(batch, dtype=np.uint64)
        if seeds is not None:
            seeds_np[:] = np.array(seeds, dtype=np.uint64)
        cdef uint64_t[::1] seeds_view = seeds_np
        opt.seeds = &seeds_view[0]
        cdef double[:, ::1] draws_view
        if draws is not None:
            if len(draws) != batch:
                raise ValueError("one list of draws per sentence")
            stride_d = max(1, max(len(d) for d in draws))
            draws_np = np.full((batch, stride_d), np.nan)
            for b, d in enumerate(draws):
                values = np.asarray(d, dtype=np.float64).reshape(-1)
                if values.size and not np.all((values >= 0) & (values < 1)):
                    raise ValueError("random draws must be in [0, 1)")
                draws_np[b, :values.size] = values
            draws_view = draws_np
            opt.draws = &draws_view[0, 0]
            opt.draws_stride = stride_d
        cdef rs_copy_inputs copy_in
        cdef rs_copy_inputs *copy_ptr = NULL
        cdef int[:, ::1] map_view
        cdef int[:, ::1] collapse_view
        cdef int[::1] words_view
        if self.model.copy != NULL:
            if copy is None:
                raise ValueError("this model copies source words: pass the sentences' "
                                 "dynamic vocabularies")
            maps, collapses, words = copy
            width = max(1, max(len(c) for c in collapses))
            map_np = np.full((batch, stride), -1, dtype=np.intc)
            collapse_np = np.full((batch, width), -1, dtype=np.intc)
            for b in range(batch):
                if len(maps[b]) != len(sources[b]) or len(collapses[b]) != words[b]:
                    raise ValueError("dynamic vocabulary sizes disagree with the sources")
                map_np[b, :len(maps[b])] = maps[b]
                collapse_np[b, :len(collapses[b])] = collapses[b]
            words_np = np.array(words, dtype=np.intc)
            if map_np.max() >= width or collapse_np.max() >= self.model.tgt_vocab or \
                    np.any(map_np >= words_np[:, None]):
                raise ValueError("dynamic vocabulary ids out of range")
            map_view = map_np
            collapse_view = collapse_np
            words_view = words_np
            copy_in.src_map = &map_view[0, 0]
            copy_in.stride = stride
            copy_in.collapse = &collapse_view[0, 0]
            copy_in.words = &words_view[0]
            copy_in.max_words = width
            copy_ptr = &copy_in
        cdef int[:, ::1] ids = ids_np
        cdef int[::1] lengths = lengths_np
        cdef rs_onmt_result *results = <rs_onmt_result *> malloc(sizeof(rs_onmt_result) * batch)
        if results == NULL:
            raise MemoryError()
        cdef char err[512]
        err[0] = 0
        cdef int status
        cdef long long decoded_rows = 0
        with nogil:
            status = rs_translate_opennmt(&self.model, &opt, batch, &ids[0, 0], stride,
                                          &lengths[0], copy_ptr, results, &decoded_rows, err,
                                          sizeof(err))
        if stats is not None:
            stats["decoded_rows"] = decoded_rows
        if status:
            free(results)
            _raise_engine_error(err.decode("utf-8", "replace"))
        cdef int i, h
        output = []
        try:
            for i in range(batch):
                hyps = _hypotheses(&results[i].result, results[i].width)
                output.append((results[i].width,
                               [hyp + (results[i].cuts[h],) for h, hyp in enumerate(hyps)]))
        finally:
            rs_onmt_free_results(results, batch)
            free(results)
        return output

    def score(self, list sources, list targets):
        """Forced decoding: sources and targets are lists of id lists (every source
        non-empty; targets without BOS/EOS). Returns, per sentence, (log-probabilities of
        the target tokens and then EOS as a float32 array, their total)."""
        if self.model.source.kind != 0:
            raise ValueError("scoring needs token sources; this model reads feature frames")
        cdef int batch = len(sources)
        if batch != len(targets):
            raise ValueError(f"{batch} sources but {len(targets)} targets")
        if batch == 0:
            return []
        src_np, src_len_np = _id_matrix(sources, self.model.src_vocab, "source")
        tgt_np, tgt_len_np = _id_matrix(targets, self.model.tgt_vocab, "target")
        if src_len_np.min() < 1:
            raise ValueError(f"source {int(np.argmin(src_len_np))} is empty: an empty source "
                             "is not run through the model, so it has no scores")
        cdef int[:, ::1] src = src_np
        cdef int[::1] src_len = src_len_np
        cdef int[:, ::1] tgt = tgt_np
        cdef int[::1] tgt_len = tgt_len_np
        cdef int src_stride = src_np.shape[1], tgt_stride = tgt_np.shape[1]
        log_probs_np = np.zeros((batch, tgt_stride + 1), np.float32)
        totals_np = np.zeros(batch, np.float32)
        cdef float[:, ::1] log_probs = log_probs_np
        cdef float[::1] totals = totals_np
        cdef char err[512]
        err[0] = 0
        cdef int status
        with nogil:
            status = rs_score(&self.model, batch, &src[0, 0], src_stride, &src_len[0],
                              &tgt[0, 0], tgt_stride, &tgt_len[0], &log_probs[0, 0],
                              &totals[0], err, sizeof(err))
        if status:
            _raise_engine_error(err.decode("utf-8", "replace"))
        return [(log_probs_np[b, :tgt_len_np[b] + 1].copy(), float(totals_np[b]))
                for b in range(batch)]


cdef list _collect(rs_result *results, int batch, int status, char *err,
                   _TokenReporter reporter, bint return_log_prob):
    """The engine's results as Python lists (and the results freed), or its error (or the
    token callback's exception) raised."""
    if status:
        free(results)
        _raise_engine_error(err.decode("utf-8", "replace"))
    if reporter is not None and reporter.error is not None:
        rs_free_results(results, batch)
        free(results)
        raise reporter.error
    cdef int i
    output = []
    try:
        for i in range(batch):
            output.append(_hypotheses(&results[i], results[i].attention_width,
                                      return_log_prob))
    finally:
        rs_free_results(results, batch)
        free(results)
    return output
