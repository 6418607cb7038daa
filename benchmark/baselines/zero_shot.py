"""Zero-shot speech-quality predictors: DNSMOS (P.835 SIG/BAK/OVRL, P.808) and PLCMOS.

Both run the ONNX graphs that the `speechmos` wheel ships (MIT, Microsoft), read from the installed
package, offline; nothing is downloaded. The numbers equal `speechmos.dnsmos.run` and
`speechmos.plcmos.run` (tests/baselines/test_zero_shot.py, to ~1e-5), but computed faster:

DNSMOS loops a clip until it lasts 9.01 s, cuts 9.01 s windows every second and averages the
windows' scores. Nearly all the time (~95%) goes to the first four 3x3 convolutions of the P.835
graph, on the full-resolution log-power spectrogram (900 frames x 161 bins per window). The windows
overlap (one second of hop is 100 of their 900 frames), and a convolution gives every frame the same
value wherever its window starts, except within four frames (one per convolution) of the window's
edges, where the window's zero padding reaches in. So the graph is cut after those convolutions
(`onnx`, at load): the head runs once over the frames that all windows cover together, each
window's four edge frames on either side are recomputed on short edge chunks with the window's own
padding, and the tail (pooling, the small convolutions, the dense layers) runs per window, batched.
P.808's log-mel features likewise are computed once per distinct frame, not with librosa per window.

Measured on 2 (shared) CPU cores, OVRL: ~3x speechmos on clips of 2-4 s (up to 4-5x where a clip
has 6-7 windows), but only ~1.1x for a clip that fits one window (2.25-2.75 s, most of the demo's
test clips: ~1.7x there overall): the head's ~0.2 s on one window's 900 frames is the graph's floor.
P.808 alone: ~18x; PLCMOS: ~10x (benchmarks/bench_zero_shot.py).

PLCMOS averages 15 runs that differ only in a random "rater embedding", which joins the graph after
the audio branch (convolutions and GRUs); the audio branch runs once per clip, and the 15 rater runs
share one batched call to the small dense head. The rater embeddings come from a seeded generator
(`seed`), so scores are reproducible; speechmos draws them from numpy's global random state, and
equals ours after `np.random.seed(seed)`.

One onnxruntime session per graph per process (module-level cache). Every clip is scored alone, on
exactly its `lengths` samples, so batch size and padding never change a score.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.data.batch import Batch

if TYPE_CHECKING:
    import onnxruntime
    import torch

SAMPLE_RATE = 16000
IMPLEMENTATION = "zero-shot-v1"
"""Bump when the computation changes: it is part of every fingerprint (the score cache key)."""

MODEL_FILES: dict[str, tuple[str, str]] = {
    "p835": (
        "dnsmos_models/sig_bak_ovr.onnx",
        "269fbebdb513aa23cddfbb593542ecc540284a91849ac50516870e1ac78f6edd",
    ),
    "p808": (
        "dnsmos_models/model_v8.onnx",
        "9246480c58567bc6affd4200938e77eef49468c8bc7ed3776d109c07456f6e91",
    ),
    "plcmos": (
        "plcmos_models/plcmos_v2.onnx",
        "c0ad3fc64ef9682b4749c0e96636b41c73b4b30bd123b9348feea06a96895286",
    ),
}
"""speechmos (0.0.1.1) file -> sha256. The graphs are cut at named tensors, so another file is
refused rather than guessed at."""

# -- DNSMOS constants (those of speechmos/DNSMOS P.835) ------------------------------------------
WINDOW_SECONDS = 9.01
WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)  # 144160
HOP_SAMPLES = SAMPLE_RATE  # one window per second
FRAME, FRAME_HOP = 320, 160  # the P.835 graph's framing: 900 frames of 320 samples, hop 160
WINDOW_FRAMES = 900
HALO = 4  # 3x3 convolutions in the cut-off head: frames each side a window edge reaches into
POOL = 2  # the head ends with a 2x2 max-pool (VALID): 161 bins -> 80
POOLED_BINS = 80
POOL_HALO = HALO // POOL
EDGE = 2 * HALO  # frames per edge chunk: its first (or last) HALO frames come out exact
HEAD_CHUNK = 1024  # output frames per head run (bounds memory on long clips: ~130 MB)
TAIL_BATCH = 8  # windows per tail run
P808_BATCH = 32  # windows per P.808 run (features: ~1 MB per window)
P835_POLY = {  # raw network output -> MOS, fitted by the DNSMOS authors (non-personalised model)
    "sig": (-0.08397278, 1.22083953, 0.0052439),
    "bak": (-0.13166888, 1.60915514, -0.39604546),
    "ovrl": (-0.06766283, 1.11546468, 0.04602535),
}
P835_COLUMNS = ("sig", "bak", "ovrl")  # order of the graph's three outputs
MEL_FFT, MEL_HOP, MEL_BANDS = 321, 160, 120  # P.808 features (librosa melspectrogram settings)

# -- PLCMOS constants ----------------------------------------------------------------------------
PLC_FFT, PLC_HOP = 512, 256
RATER_DIM = 64
PLC_MIN_SAMPLES = 5 * PLC_HOP + 1  # 7 STFT frames; shorter clips (speechmos fails) are looped

_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str, int], onnxruntime.InferenceSession] = {}
_PARAM_COUNTS: dict[str, int] = {}


# ---------------------------------------------------------------------------------------------
# model files and sessions


@cache
def _model_bytes(key: str) -> bytes:
    """The ONNX file shipped in the speechmos wheel, checked against its known sha256."""
    from importlib.resources import files

    rel, expected = MODEL_FILES[key]
    try:
        data = files("speechmos").joinpath(rel).read_bytes()
    except ModuleNotFoundError:
        raise RuntimeError(
            "the speechmos package is not installed (pip install speechmos): its wheel ships "
            "the DNSMOS/PLCMOS ONNX models"
        ) from None
    except FileNotFoundError:
        raise RuntimeError(f"speechmos is installed without '{rel}'") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise RuntimeError(
            f"speechmos '{rel}' has sha256 {digest}, not the {expected} this scorer was checked "
            "against (install speechmos==0.0.1.1)"
        )
    return data


def model_hashes(keys: tuple[str, ...]) -> dict[str, str]:
    """sha256 of the shipped ONNX files behind `keys` (checked on read)."""
    for key in keys:
        _model_bytes(key)
    return {MODEL_FILES[k][0]: MODEL_FILES[k][1] for k in keys}


def _cut(model: Any, inputs: dict[str, list[Any]], outputs: dict[str, list[Any]]) -> bytes:
    """The part of an ONNX model between the named tensors (shapes: ints or symbolic names)."""
    import onnx
    from onnx import helper

    producers = {out: node for node in model.graph.node for out in node.output}
    keep: set[int] = set()
    stack = list(outputs)
    seen: set[str] = set(inputs)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        node = producers.get(name)
        if node is None:
            continue  # an initializer or the model's own input
        keep.add(id(node))
        stack.extend(i for i in node.input if i)
    nodes = [n for n in model.graph.node if id(n) in keep]
    used = {i for n in nodes for i in n.input if i}
    inits = [t for t in model.graph.initializer if t.name in used]
    missing = used - set(inputs) - {t.name for t in inits} - {o for n in nodes for o in n.output}
    if missing:
        raise RuntimeError(f"cutting the ONNX graph left inputs unbound: {sorted(missing)}")
    graph = helper.make_graph(
        nodes,
        "cut",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in outputs.items()],
        inits,
    )
    cut = helper.make_model(graph, opset_imports=list(model.opset_import))
    cut.ir_version = model.ir_version
    onnx.checker.check_model(cut)
    return cut.SerializeToString()


def _graph(key: str) -> bytes:
    """Serialised sub-graph `key` of a shipped model (see the module docstring)."""
    import onnx

    if key == "p808":
        return _model_bytes("p808")
    if key in ("p835_head", "p835_tail"):
        model = onnx.load_model_from_string(_model_bytes("p835"))
        pooled = "mos_estimator_logpow/conv2d_3/Relu:0_pooling0"  # after conv 4 and a max-pool
        if key == "p835_head":  # frames [N, F, 320] -> [N, 32, F / 2, 80]
            return _cut(
                model,
                {"mos_estimator_logpow/concat:0": ["N", "F", FRAME]},
                {pooled: ["N", 32, "P", POOLED_BINS]},
            )
        return _cut(
            model,
            {pooled: ["N", 32, WINDOW_FRAMES // POOL, POOLED_BINS]},
            {"Identity:0": ["N", 3]},
        )
    if key in ("plc_audio", "plc_head"):
        model = onnx.load_model_from_string(_model_bytes("plcmos"))
        states = ["onnx::Concat_335", "onnx::Concat_337"]  # the two GRUs' final states
        if key == "plc_audio":
            return _cut(
                model,
                {"degraded_audio": ["B", 1, "T", PLC_FFT // 2 + 1]},
                {s: ["B", 32] for s in states},
            )
        return _cut(
            model,
            {**{s: ["B", 32] for s in states}, "rater_embed": ["B", RATER_DIM]},
            {"plcmos": ["B"]},
        )
    raise KeyError(key)


def session(key: str, threads: int = 0) -> onnxruntime.InferenceSession:
    """The process's one session for sub-graph `key` (threads 0: onnxruntime's default)."""
    with _LOCK:
        sess = _SESSIONS.get((key, threads))
        if sess is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3  # PLCMOS squeezes its output: [] at batch 1, not [B]
            # every clip brings other shapes: a memory plan per shape doubles the run time
            options.enable_mem_pattern = False
            if threads:
                options.intra_op_num_threads = threads
            sess = ort.InferenceSession(_graph(key), options, providers=["CPUExecutionProvider"])
            _SESSIONS[(key, threads)] = sess
        return sess


def _parameter_count(model_key: str) -> int:
    """Weights in a shipped ONNX graph (float initializers, fixed DFT kernels included)."""
    if model_key not in _PARAM_COUNTS:
        import onnx

        model = onnx.load_model_from_string(_model_bytes(model_key))
        _PARAM_COUNTS[model_key] = sum(
            int(np.prod(t.dims))
            for t in model.graph.initializer
            if t.data_type == onnx.TensorProto.FLOAT
        )
    return _PARAM_COUNTS[model_key]


def _clips(batch: Batch) -> list[np.ndarray]:
    """Each row's real samples as float32 numpy (padding cut off by `lengths`)."""
    import torch

    if batch.sample_rate != SAMPLE_RATE:
        raise ValueError(f"expects {SAMPLE_RATE} Hz audio, got {batch.sample_rate} Hz")
    wave = batch.waveforms.detach().to("cpu", dtype=torch.float32).numpy()
    return [np.ascontiguousarray(wave[i, : int(n)]) for i, n in enumerate(batch.lengths.tolist())]


# ---------------------------------------------------------------------------------------------
# DNSMOS


def dnsmos_windows(n: int) -> list[int]:
    """Start samples of the windows DNSMOS averages over for a (looped) clip of `n` samples.

    The bounds use speechmos's float expressions on purpose: `int((i + 9.01) * 16000)` rounds down
    to one sample short for i in 7..23 (and a few more), and speechmos skips those windows.
    """
    count = int(np.floor(n / SAMPLE_RATE) - WINDOW_SECONDS) + 1
    starts = []
    for i in range(count):
        start, end = int(i * HOP_SAMPLES), int((i + WINDOW_SECONDS) * HOP_SAMPLES)
        if min(end, n) - start >= WINDOW_SAMPLES:
            starts.append(start)
    return starts


def _loop(x: np.ndarray) -> np.ndarray:
    """Double the clip until it lasts a window (speechmos's np.append loop, as one tile)."""
    if x.size == 0:
        x = np.zeros(1, dtype=np.float32)
    reps = 1
    while x.size * reps < WINDOW_SAMPLES:
        reps *= 2
    return np.tile(x, reps)


def _runs(first: list[int]) -> list[tuple[int, int]]:
    """[g0, g1) frame spans of runs of overlapping windows (window k: frames first[k] + [0, 900))."""
    runs: list[list[int]] = []
    for g in first:
        if runs and g < runs[-1][1]:
            runs[-1][1] = g + WINDOW_FRAMES
        else:
            runs.append([g, g + WINDOW_FRAMES])
    return [(g0, g1) for g0, g1 in runs]


def _p835_raw(audio: np.ndarray, starts: list[int], threads: int) -> np.ndarray:
    """[K, 3] raw P.835 outputs (sig, bak, ovrl) of the windows starting at `starts`.

    Frame g is audio[160g : 160g + 320]; a window starting at sample s has frames s/160 + [0, 900).
    The head (to the first 2x2 max-pool) runs once per run of overlapping windows, in chunks with
    HALO frames of context; every window start is an even frame (100 per second), so the pooled
    frames line up with each window's own. A window's first and last HALO frames (POOL_HALO pooled
    frames) feel its zero padding and come from short edge chunks that start or end where it does.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    head, tail = session("p835_head", threads), session("p835_tail", threads)
    head_in, head_out = head.get_inputs()[0].name, head.get_outputs()[0].name
    frames = sliding_window_view(audio, FRAME)[::FRAME_HOP]
    first = [s // FRAME_HOP for s in starts]
    runs = _runs(first)
    acts: list[tuple[int, np.ndarray]] = []  # (g0, pooled activations [32, (g1 - g0) / 2, 80])
    for g0, g1 in runs:
        out = np.empty((32, (g1 - g0) // POOL, POOLED_BINS), dtype=np.float32)
        for c0 in range(g0, g1, HEAD_CHUNK):
            c1 = min(c0 + HEAD_CHUNK, g1)
            i0, i1 = max(c0 - HALO, g0), min(c1 + HALO, g1)
            y = head.run([head_out], {head_in: np.ascontiguousarray(frames[None, i0:i1])})[0]
            out[:, (c0 - g0) // POOL : (c1 - g0) // POOL] = y[
                0, :, (c0 - i0) // POOL : (c1 - i0) // POOL
            ]
        acts.append((g0, out))
    edges = np.stack(
        [frames[g + off : g + off + EDGE] for g in first for off in (0, WINDOW_FRAMES - EDGE)]
    )
    edge_out = head.run([head_out], {head_in: np.ascontiguousarray(edges)})[0]
    tail_in, tail_out = tail.get_inputs()[0].name, tail.get_outputs()[0].name
    pooled = WINDOW_FRAMES // POOL
    raw = []
    for b0 in range(0, len(first), TAIL_BATCH):
        block = np.empty((min(TAIL_BATCH, len(first) - b0), 32, pooled, POOLED_BINS), np.float32)
        for j, k in enumerate(range(b0, b0 + len(block))):
            g = first[k]
            g0, out = next((r0, o) for r0, o in reversed(acts) if r0 <= g)
            block[j] = out[:, (g - g0) // POOL : (g - g0) // POOL + pooled]
            block[j, :, :POOL_HALO] = edge_out[2 * k, :, :POOL_HALO]
            block[j, :, -POOL_HALO:] = edge_out[2 * k + 1, :, -POOL_HALO:]
        raw.append(tail.run([tail_out], {tail_in: block})[0])
    return np.concatenate(raw).astype(np.float64)


@cache
def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=MEL_FFT, n_mels=MEL_BANDS).astype(np.float64)


@cache
def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic, as librosa's stft uses


def _p808_features(audio: np.ndarray, starts: list[int]) -> np.ndarray:
    """[K, 900, 120] P.808 inputs: per window, librosa's centred log-mel (zero padding) of its
    first 144000 samples, in dB relative to the window's maximum (80 dB range), as (dB + 40) / 40.

    Mel frame j of a window starting at sample s covers s + 160(j - 1) + [0, 321): frames 1..898
    lie inside the window and are computed once for all windows; frames 0 and 899 reach into the
    padding (160 zeros before, one after) and are computed per window.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    pad = MEL_FFT // 2
    inner = WINDOW_FRAMES - 2
    frames = sliding_window_view(audio, MEL_FFT)[::MEL_HOP]  # frame i: audio[160i : 160i + 321]
    first = [s // MEL_HOP for s in starts]  # window k's frame j >= 1 is frames[first[k] + j - 1]
    spans = _runs(first)
    mels = [_log_mel_power(frames[g0 : g1 - 2]) for g0, g1 in spans]
    edges = np.zeros((len(starts), 2, MEL_FFT), dtype=np.float32)
    n = WINDOW_SAMPLES - MEL_HOP
    for k, s in enumerate(starts):
        edges[k, 0, pad:] = audio[s : s + MEL_FFT - pad]
        edges[k, 1, :-1] = audio[s + n - (MEL_FFT - 1) : s + n]
    edge_mel = _log_mel_power(edges.reshape(-1, MEL_FFT)).reshape(len(starts), 2, MEL_BANDS)
    mel = np.empty((len(starts), WINDOW_FRAMES, MEL_BANDS), dtype=np.float64)
    for k, g in enumerate(first):
        r = max(i for i, (g0, _) in enumerate(spans) if g0 <= g)
        mel[k, 1:-1] = mels[r][g - spans[r][0] : g - spans[r][0] + inner]
        mel[k, 0], mel[k, -1] = edge_mel[k, 0], edge_mel[k, 1]
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db -= 10.0 * np.log10(np.maximum(mel.max(axis=(1, 2), keepdims=True), 1e-10))
    db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - 80.0)
    return ((db + 40.0) / 40.0).astype(np.float32)


def _log_mel_power(frames: np.ndarray) -> np.ndarray:
    """[F, 120] mel power of [F, 321] frames (periodic Hann, power spectrum, Slaney mel)."""
    power = np.abs(np.fft.rfft(frames * _hann(MEL_FFT), axis=-1)) ** 2
    return power @ _mel_basis().T


def dnsmos(
    x: np.ndarray, outputs: tuple[str, ...] = ("ovrl", "sig", "bak", "p808"), threads: int = 0
) -> dict[str, float]:
    """DNSMOS of one 16 kHz clip: the window-averaged MOS for each of `outputs`.

    'sig', 'bak', 'ovrl' come from the P.835 model (each window's raw output mapped through the
    authors' polynomial, then averaged), 'p808' from the P.808 model; only the graphs needed run.
    """
    audio = _loop(np.asarray(x, dtype=np.float32))
    starts = dnsmos_windows(audio.size)
    result: dict[str, float] = {}
    if any(o in P835_POLY for o in outputs):
        raw = _p835_raw(audio, starts, threads)
        for col, name in enumerate(P835_COLUMNS):
            if name in outputs:
                result[name] = float(np.mean(np.polyval(P835_POLY[name], raw[:, col])))
    if "p808" in outputs:
        p808 = session("p808", threads)
        out = [
            p808.run(None, {p808.get_inputs()[0].name: _p808_features(audio, block)})[0]
            for block in (starts[i : i + P808_BATCH] for i in range(0, len(starts), P808_BATCH))
        ]
        result["p808"] = float(np.mean(np.concatenate(out)[:, 0].astype(np.float64)))
    return {o: result[o] for o in outputs}


DNSMOS_OUTPUTS = {  # output -> the shipped model it comes from
    "ovrl": "p835",  # P.835 overall quality
    "sig": "p835",  # P.835 speech signal quality
    "bak": "p835",  # P.835 background noise quality
    "p808": "p808",  # P.808 overall quality
}


class DnsMos:
    """DNSMOS (Reddy et al., ICASSP 2022) as a scalar reward: `output` picks which MOS it returns.

    output: 'ovrl' (default; P.835 overall), 'sig' (speech signal), 'bak' (background noise) or
    'p808' (the P.808 model). threads: onnxruntime intra-op threads (0 = its default).
    """

    def __init__(self, output: str = "ovrl", threads: int = 0, sample_rate: int = SAMPLE_RATE):
        if output not in DNSMOS_OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(DNSMOS_OUTPUTS)}, got {output!r}")
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"sample_rate: DNSMOS runs at {SAMPLE_RATE} Hz, got {sample_rate}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads must be an int >= 0, got {threads!r}")
        self.output = output
        self.threads = threads
        self.sample_rate = SAMPLE_RATE
        model = DNSMOS_OUTPUTS[output]
        self._hashes = model_hashes((model,))
        self.parameters_count = _parameter_count(model)
        for key in ("p835_head", "p835_tail") if model == "p835" else ("p808",):
            session(key, threads)  # build now: a broken install fails at load, not mid-run

    def fingerprint(self) -> str:
        files = ",".join(f"{k}={v}" for k, v in sorted(self._hashes.items()))
        return f"dnsmos-{IMPLEMENTATION}-{self.output}-{files}"

    def score(self, batch: Batch) -> torch.Tensor:
        import torch

        values = [dnsmos(x, (self.output,), self.threads)[self.output] for x in _clips(batch)]
        return torch.tensor(values, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# PLCMOS


def _plc_features(x: np.ndarray) -> np.ndarray:
    """[1, 1, T, 257] PLCMOS input: log power of a Hamming-windowed 512-point STFT, hop 256, whose
    first frame ends at sample 256; zero bins floored to 120 dB under the smallest nonzero power."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(x, dtype=np.float32)
    count = -(-(x.size + PLC_FFT - PLC_HOP) // PLC_HOP)
    padded = np.zeros((count - 1) * PLC_HOP + PLC_FFT, dtype=np.float32)
    padded[PLC_FFT - PLC_HOP : PLC_FFT - PLC_HOP + x.size] = x
    window = np.hamming(PLC_FFT + 1)[:-1]
    frames = sliding_window_view(padded, PLC_FFT)[::PLC_HOP] * window
    power = np.abs(np.fft.rfft(frames, n=PLC_FFT)) ** 2
    nonzero = power > 0
    if nonzero.any():
        logp = np.full_like(power, np.log(power[nonzero].min()) - 120.0 / 10.0 * np.log(10.0))
        logp[nonzero] = np.log(power[nonzero])
    else:
        logp = np.full_like(power, -80.0 / 10.0 * np.log(10.0))
    return (logp / 20.0).astype(np.float32)[None, None]


def plcmos(x: np.ndarray, seed: int = 0, rounds: int = 15, threads: int = 0) -> float:
    """PLCMOS v2 of one 16 kHz clip: the mean over `rounds` seeded rater embeddings."""
    x = np.asarray(x, dtype=np.float32)
    if x.size < PLC_MIN_SAMPLES:
        x = np.tile(x if x.size else np.zeros(1, np.float32), -(-PLC_MIN_SAMPLES // max(x.size, 1)))
    audio, head = session("plc_audio", threads), session("plc_head", threads)
    states = audio.run(None, {audio.get_inputs()[0].name: _plc_features(x)})
    raters = np.random.RandomState(seed).normal(size=(rounds, RATER_DIM)).astype(np.float32)
    feeds = {
        i.name: np.repeat(s, rounds, axis=0)
        for i, s in zip(audio.get_outputs(), states, strict=True)
    }
    feeds["rater_embed"] = raters
    mos = np.asarray(head.run(None, feeds)[0], dtype=np.float64).reshape(rounds)
    return float(sum(float(v) for v in mos) / rounds)


class PlcMos:
    """PLCMOS v2 (Diener et al., Interspeech 2023) as a scalar reward.

    seed: rater embeddings' generator seed; rounds: embeddings averaged (speechmos uses 15);
    threads: onnxruntime intra-op threads (0 = its default).
    """

    def __init__(
        self, seed: int = 0, rounds: int = 15, threads: int = 0, sample_rate: int = SAMPLE_RATE
    ):
        for field, value, low in (
            ("seed", seed, 0),
            ("rounds", rounds, 1),
            ("threads", threads, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{field} must be an int >= {low}, got {value!r}")
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"sample_rate: PLCMOS runs at {SAMPLE_RATE} Hz, got {sample_rate}")
        self.seed, self.rounds, self.threads = seed, rounds, threads
        self.sample_rate = SAMPLE_RATE
        self._hashes = model_hashes(("plcmos",))
        self.parameters_count = _parameter_count("plcmos")
        for key in ("plc_audio", "plc_head"):
            session(key, threads)

    def fingerprint(self) -> str:
        files = ",".join(f"{k}={v}" for k, v in sorted(self._hashes.items()))
        return f"plcmos-{IMPLEMENTATION}-seed{self.seed}-rounds{self.rounds}-{files}"

    def score(self, batch: Batch) -> torch.Tensor:
        import torch

        values = [plcmos(x, self.seed, self.rounds, self.threads) for x in _clips(batch)]
        return torch.tensor(values, dtype=torch.float64)
