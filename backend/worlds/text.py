"""Reading answers from a stored vocabulary, without torch (the app imports this at once; the
worlds, which need torch, re-export it from backend/worlds/base.py)."""

from __future__ import annotations

import numpy as np

PAD, EOS, UNK = "[PAD]", "[EOS]", "[UNK]"
# Token strings that end an answer in a stored vocabulary (toy worlds use the first two).
STOP_TOKENS = frozenset({EOS, PAD, "<|endoftext|>", "</s>", "<pad>", "<eos>"})


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level BPE alphabet: every byte as one printable character."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars


_BYTE_OF = {c: b for b, c in _bytes_to_unicode().items()}  # "Ġ" -> 32 (space), ...


def _byte_level(vocab: np.ndarray) -> bool:
    """A byte-level BPE vocabulary (GPT-2, Pythia): pieces carry "Ġ" for a leading space."""
    return len(vocab) > 256 and any("Ġ" in str(w) for w in vocab[:2000])


def decode_tokens(answers: np.ndarray, vocab: np.ndarray) -> list[str]:
    """Readable text of answers (B, T) from a vocabulary of token strings (V,): each answer's
    tokens up to the first stop token (EOS, PAD). Word-level vocabularies (the toy worlds) are
    joined with spaces; byte-level BPE pieces (GPT-2's "Ġ") and SentencePiece pieces ("▁") the
    way those tokenizers write them. This is how a stored result is read without its tokenizer
    (the app); a world with a tokenizer of its own may decode with it instead."""
    byte_level = _byte_level(vocab)
    out = []
    for row in np.asarray(answers):
        words = []
        for t in row:
            w = str(vocab[t]) if 0 <= t < len(vocab) else "?"
            if w in STOP_TOKENS:
                break
            words.append(w)
        if byte_level or any(w.startswith("Ġ") for w in words):
            raw = bytes(_BYTE_OF.get(c, ord("?")) for c in "".join(words))
            out.append(raw.decode("utf-8", errors="replace").strip())
        elif any(w.startswith("▁") for w in words):  # SentencePiece
            out.append("".join(words).replace("▁", " ").strip())
        else:
            out.append(" ".join(words))
    return out
