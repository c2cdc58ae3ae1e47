#!/usr/bin/env python3
"""Produces the ground truth that tests/tokenizer checks cai's bpe_tokenizer against, with Hugging Face
`tokenizers` (pip install tokenizers gguf numpy jinja2):

  gpt2_expected.json        GPT-2 (the shared encoder.json + vocab.bpe, <|endoftext|> special) ids
  smollm2_expected.json     SmolLM2-135M-Instruct ids (vocabulary read from the GGUF file)
  pretokenize_expected.json the pieces of the GPT-2, SmolLM and Llama-3 pre-tokenizers (byte offsets)
  chat_expected.json        SmolLM2's chat template (from the GGUF) rendered by jinja2 as transformers does

and writes, next to the GGUF model in ${CAI_MODEL_CACHE:-~/.cache/cai}, SmolLM2-135M-Instruct.tokenizer.json:
the model's tokenizer rebuilt from its GGUF metadata (49152 tokens, not committed). The GGUF file names
the pre-tokenizer "smollm", which llama.cpp runs as \\p{N} then GPT-2's pattern, i.e. Hugging Face's
Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)].

Usage: python3 tests/data/tokenizer/gen_expected.py   (from the repository root or anywhere)
"""
import json
import os
import random
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SHARED = ROOT.parent / "shared" / "data" / "gpt2-bpe"
CACHE = Path(os.environ.get("CAI_MODEL_CACHE", Path.home() / ".cache" / "cai"))
GGUF = CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_JSON = CACHE / "SmolLM2-135M-Instruct.tokenizer.json"

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

TEXTS = [
    "Hello world",
    "Hello, world! How are you doing today?",
    " leading space and trailing space ",
    "I'm sure you're right; they've said we'll go, he'd agree, it's DON'T and I'M LOUD",
    "''s 's 'S 'LL 'll's o'clock rock'n'roll",
    "Numbers: 0 1 12 123 1234 12345 3.14159 -42 1,000,000 2024-06-01 0x1F 1e-9",
    "a  b   c    d\n\ne\n\n\nf\t\tg \t h\r\nend   ",
    "line one\nline two\n  indented\n\n    more indented\n",
    "   ",
    "\n",
    "",
    "!!!??? ... --- ### $$$ %%% &&& *** ((( ))) [[[ ]]] {{{ }}} <<< >>> ||| ~~~",
    "def f(x):\n    return x ** 2  # square\n\nprint(f(3))",
    "Ünïcödé çàfé naïve résumé Straße",
    "Привет, мир! Как дела?",
    "Γειά σου Κόσμε",
    "你好，世界！今天天气很好。",
    "こんにちは世界、カタカナとひらがな",
    "안녕하세요 세계",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "שלום עולם",
    "ไทย ภาษา",
    "Emoji: 😀 😃 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤖🤖🤖",
    "e\u0301 combining acute, a\u0308, \u0915\u094d\u0937",
    "non\u00a0breaking\u3000ideographic\u2028line\u2029para\u0085nel\u200bzwsp",
    "Roman numerals Ⅻ and fractions ½ ¾ and superscripts ² ³ and Arabic-Indic ١٢٣",
    "<|endoftext|>",
    "before<|endoftext|>after <|endoftext|> spaced",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
    "hello世界123abc",
    "a" * 200,
    " " * 100 + "x",
    "mixed\u00a0 \u00a0spaces  \u3000 here",
    "URL https://example.com/path?q=1&r=two#frag and email a.b@c.de",
    "tabs\tand\u000bvertical\u000cform",
    "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
    "'quoted' \"double\" `back` «guillemets» „low“",
    "long s: it'\u017fab IT'\u017f Kelvin '\u212aab and 'S'T'RE'VE'M'LL'D",
    "Unicode 15/16 letters: \u1c89\u1c8a \U000105c0\U000105c1 \U00011f04\U00011f05 and digits \U00010d40\U00010d41 \U0001e4f0",
]


def random_texts(n, seed=1234):
    rng = random.Random(seed)
    pools = [
        [chr(c) for c in range(0x20, 0x7F)],
        list(" \t\n\r  "),
        [chr(c) for c in range(0xA0, 0x250)],
        [chr(c) for c in range(0x370, 0x3FF)],
        [chr(c) for c in range(0x400, 0x4FF)],
        [chr(c) for c in range(0x600, 0x6FF)],
        [chr(c) for c in range(0x900, 0x97F)],
        [chr(c) for c in range(0x3040, 0x30FF)],
        [chr(c) for c in range(0x4E00, 0x4F00)],
        [chr(c) for c in range(0x1F300, 0x1F64F)],
        ["0", "1", "2", "9", "٣", "½", "Ⅷ"],
        ["'s", "'t", "'re", "'LL", "'", "\u2028", "\u3000", "\u00a0", "\u200d"],
    ]
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(k)))
    return out


def all_texts():
    return TEXTS + random_texts(120)


def gpt2_tokenizer():
    bpe = models.BPE.from_file(str(SHARED / "encoder.json"), str(SHARED / "vocab.bpe"))
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def smollm2_tokenizer_json():
    """The SmolLM2 tokenizer.json rebuilt from the GGUF metadata."""
    import gguf

    reader = gguf.GGUFReader(str(GGUF))
    f = reader.fields
    tokens = f["tokenizer.ggml.tokens"].contents()
    merges = f["tokenizer.ggml.merges"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    pre = f["tokenizer.ggml.pre"].contents()
    assert pre == "smollm", pre
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, (t, ty) in enumerate(zip(tokens, types)) if ty == 3]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<|endoftext|>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": [m.split(" ", 1) for m in merges]},
    }


CONVERSATIONS = [
    [{"role": "user", "content": "Hi!"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}],
    [{"role": "user", "content": "Line one\nline two"}, {"role": "assistant", "content": "Ok 😀"}],
]


def chat_expected(template):
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # as transformers' apply_chat_template
    tmpl = env.from_string(template)
    return {"produced_by": "tests/data/tokenizer/gen_expected.py", "template": template,
            "cases": [{"messages": c, "add_generation_prompt": g,
                       "rendered": tmpl.render(messages=c, add_generation_prompt=g)}
                      for c in CONVERSATIONS for g in (False, True)]}


def byte_offsets(text, pieces):
    out = []
    for piece, (a, b) in pieces:
        out.append([len(text[:a].encode()), len(text[:b].encode())])
    return out


def write(name, obj):
    path = HERE / name
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {path}")


def main():
    texts = all_texts()
    gpt2 = gpt2_tokenizer()
    ids = [gpt2.encode(t, add_special_tokens=False).ids for t in texts]
    for t, i in zip(texts, ids):
        assert gpt2.decode(i, skip_special_tokens=False) == t, t
    write("gpt2_expected.json", {"tokenizer": "gpt2 (shared encoder.json + vocab.bpe, <|endoftext|> special)",
                                 "produced_by": "tests/data/tokenizer/gen_expected.py",
                                 "tokenizers_version": __import__("tokenizers").__version__,
                                 "texts": texts, "ids": ids})

    split = {
        "gpt2": pre_tokenizers.Split(Regex(GPT2_PATTERN), "isolated"),
        "smollm": pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                           pre_tokenizers.Split(Regex(GPT2_PATTERN), "isolated")]),
        "llama3": pre_tokenizers.Split(Regex(LLAMA3_PATTERN), "isolated"),
    }
    write("pretokenize_expected.json", {
        "produced_by": "tests/data/tokenizer/gen_expected.py", "texts": texts,
        "pieces": {k: [byte_offsets(t, p.pre_tokenize_str(t)) for t in texts] for k, p in split.items()}})

    if GGUF.exists():
        spec = smollm2_tokenizer_json()
        import gguf
        template = gguf.GGUFReader(str(GGUF)).fields["tokenizer.chat_template"].contents()
        try:
            write("chat_expected.json", chat_expected(template))
        except ImportError:
            print("jinja2 is not installed (pip install jinja2): chat_expected.json not rewritten", file=sys.stderr)
        SMOL_JSON.write_text(json.dumps(spec, ensure_ascii=False))
        print(f"wrote {SMOL_JSON}")
        smol = Tokenizer.from_file(str(SMOL_JSON))
        ids = [smol.encode(t, add_special_tokens=False).ids for t in texts]
        write("smollm2_expected.json", {"tokenizer": "SmolLM2-135M-Instruct (vocabulary from the Q4_1 GGUF)",
                                        "produced_by": "tests/data/tokenizer/gen_expected.py",
                                        "tokenizers_version": __import__("tokenizers").__version__,
                                        "vocab_size": len(spec["model"]["vocab"]), "texts": texts, "ids": ids})
    else:
        print(f"{GGUF} is absent (scripts/fetch-smollm2 puts it there): smollm2_expected.json not rewritten",
              file=sys.stderr)


if __name__ == "__main__":
    main()
