"""Tiny Hugging Face models for the hf world's tests, built from configs (nothing downloaded) and
saved with safetensors to a folder: two policies (GPT-2, GPT-NeoX as Pythia), two gold reward
models (DeBERTa-v2 as OpenAssistant's, GPT-2), proxy bases, their own tokenizers, prompt files."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PreTrainedTokenizerFast

TOPICS = ["fruits", "animals", "colors", "tools", "drinks", "cities", "rivers", "planets"]
WORDS = ["apple", "pear", "plum", "cat", "dog", "cow", "red", "blue", "green", "saw", "drill",
         "tea", "milk", "paris", "rome", "nile", "mars"]  # fmt: skip
EOS = "<|endoftext|>"


def instructions() -> list[str]:
    """Thirty-two instructions of varying length (so prompts need padding)."""
    out = []
    for i, topic in enumerate(TOPICS):
        out.append(f"List {i % 4 + 1} {topic}.")
        out.append(f"Name one of the {topic} you like best and say why in a short sentence.")
        out.append(f"Which {topic} are green?")
        out.append(f"Write a very short poem about {topic} and {WORDS[i]}, then stop.")
    return out


def corpus() -> list[str]:
    return [*instructions(), " ".join(WORDS), "Below is an instruction. ### Response: ### Input:"]


def bpe_tokenizer(pad: str | None) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2 / Pythia style); `pad` None: no pad token, like GPT-2."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [EOS] + ([pad] if pad else [])
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS, pad_token=pad
    )


def wordpiece_tokenizer() -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer with [CLS] a [SEP] b [SEP] pairs (DeBERTa/BERT style)."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tok.train_from_iterator(
        corpus(),
        trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials, show_progress=False),
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]",
    )  # fmt: skip


def _save(model, tok, folder: Path) -> str:
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return str(folder)


def build_zoo(root: Path, width: int = 32, layers: int = 2) -> dict[str, str]:
    """Folders of tiny models: gpt2 and neox policies, deberta and gpt2 golds, bert proxy base,
    a two-label classifier (not a reward model). Seeded, so every build is the same. `width`
    and `layers` size the models (benchmarks/bench_gpu.py builds larger ones)."""
    from transformers import (
        BertConfig,
        BertModel,
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        GPT2Config,
        GPT2ForSequenceClassification,
        GPT2LMHeadModel,
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
    )

    torch.manual_seed(0)
    root = Path(root)
    gpt2_tok, neox_tok, wp = (
        bpe_tokenizer(None),
        bpe_tokenizer("<|padding|>"),
        wordpiece_tokenizer(),
    )
    eos = gpt2_tok.eos_token_id
    heads = max(2, width // 64)
    small = dict(n_embd=width, n_layer=layers, n_head=heads, n_positions=256)
    sizes = dict(
        hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=2 * width, max_position_embeddings=256,
    )  # fmt: skip
    zoo = {}
    zoo["gpt2"] = _save(
        GPT2LMHeadModel(
            GPT2Config(vocab_size=len(gpt2_tok), bos_token_id=eos, eos_token_id=eos, **small)
        ),
        gpt2_tok,
        root / "gpt2-policy",
    )
    neox = GPTNeoXConfig(
        vocab_size=len(neox_tok), bos_token_id=eos, eos_token_id=eos,
        pad_token_id=neox_tok.pad_token_id, **sizes,
    )  # fmt: skip
    zoo["neox"] = _save(GPTNeoXForCausalLM(neox), neox_tok, root / "neox-policy")
    deberta = DebertaV2Config(
        vocab_size=len(wp), pooler_hidden_size=width, num_labels=1,
        pad_token_id=wp.pad_token_id, initializer_range=0.2, **sizes,
    )  # fmt: skip
    zoo["deberta_gold"] = _save(
        DebertaV2ForSequenceClassification(deberta), wp, root / "deberta-gold"
    )
    gpt2_rm = GPT2Config(
        vocab_size=len(gpt2_tok), num_labels=1, bos_token_id=eos, eos_token_id=eos,
        pad_token_id=eos, initializer_range=0.2, **small,
    )  # fmt: skip
    zoo["gpt2_gold"] = _save(GPT2ForSequenceClassification(gpt2_rm), gpt2_tok, root / "gpt2-gold")
    bert = BertConfig(
        vocab_size=len(wp), **{**sizes, "num_hidden_layers": 1},
    )  # fmt: skip
    zoo["bert_base"] = _save(BertModel(bert), wp, root / "bert-base")
    two = DebertaV2Config(**{**deberta.to_dict(), "id2label": {0: "bad", 1: "good"}})
    zoo["two_label"] = _save(DebertaV2ForSequenceClassification(two), wp, root / "two-label")
    return zoo


def write_prompts(path: Path, field: str = "instruction") -> str:
    """A JSONL prompt file (AlpacaFarm-like rows; one with an input column) of 32 lines."""
    rows = [{field: text, "input": ""} for text in instructions()]
    rows[3]["input"] = "apples and pears"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)
