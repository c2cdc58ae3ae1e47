#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures that tests/model/test_torch_reference.cpp compares cai's
transformer with: tiny random GPT-2 and Llama models, saved by Hugging Face transformers'
save_pretrained, and what transformers computes with them in fp32 on one fixed batch.

Usage: make_fixtures.py [OUT_ROOT]   (default: tests/data/model/torch next to this script's tests/)

For each configuration OUT_ROOT/<name>/ receives
  config.json, model.safetensors   save_pretrained(safe_serialization=True), nothing else;
  expected.safetensors             float32 tensors, except "ids" and "targets" (int32):
    ids       (B, T)    input token ids
    targets   (B, T)    next-token targets, -1 where masked
    logits    (B, T, V) model(ids).logits
    loss      ()        cross_entropy(logits, targets, ignore_index=-1, reduction="mean"), the mean over
                        unmasked targets, as cai's transformer::forward_loss computes it
    grad.<p>  d(loss)/d(p) for every parameter p, named as cai names it (Hugging Face's name without
              GPT-2's "transformer." prefix; a tied head has no lm_head.weight: its gradient is part of
              the embedding's). GPT-2's Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc,
              mlp.c_proj) are stored, like their gradients here, in Hugging Face's (in, out) layout;
              cai holds them transposed, (out, in).

The weights are drawn with numpy from fixed seeds (not torch's generator), so a rerun writes the same
models with any torch version; expected values may differ from the committed ones in the last bits.
Exits 77 when torch or transformers cannot be imported (CTest's skip code for the live check).
"""
import os
import sys

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    import transformers
    from safetensors.numpy import save_file
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
except ImportError as e:  # the live check is skipped, not failed, without the references
    print(f"skipping: {e}", file=sys.stderr)
    sys.exit(77)

B, T = 2, 6


def configs():
    common = dict(attn_implementation="eager")
    gpt2 = GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                      n_inner=32,  # 4 * n_embd by default; 32 keeps the fixture near 50 KB
                      activation_function="gelu_new", layer_norm_epsilon=1e-5,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      bos_token_id=0, eos_token_id=0, **common)  # inside the tiny vocabulary
    def llama(tied):
        return LlamaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, intermediate_size=24, max_position_embeddings=16,
                           rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=tied,
                           attention_bias=False, mlp_bias=False, hidden_act="silu", **common)
    return [("gpt2", gpt2, GPT2LMHeadModel, 1),
            ("llama", llama(False), LlamaForCausalLM, 2),
            ("llama_tied", llama(True), LlamaForCausalLM, 3)]


def cai_name(hf_name):
    return hf_name[len("transformer."):] if hf_name.startswith("transformer.") else hf_name


def randomize(model, seed):
    """Weights of standard deviation 0.3 (larger than the usual 0.02, so that every path carries a
    visible signal); norm weights 1 + 0.1 N(0, 1); biases 0.1 N(0, 1)."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):  # named_parameters lists a tied tensor once
            if "ln_" in name or "norm" in name:
                values = (1.0 if name.endswith(".weight") else 0.0) + 0.1 * rng.standard_normal(p.shape)
            elif name.endswith(".bias"):
                values = 0.1 * rng.standard_normal(p.shape)
            else:
                values = 0.3 * rng.standard_normal(p.shape)
            p.copy_(torch.from_numpy(values.astype(np.float32)))


def make(root, name, config, cls, seed):
    out = os.path.join(root, name)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    model = cls(config).float()
    randomize(model, seed)
    model.eval()  # no dropout (the rates are 0 anyway)
    model.save_pretrained(out, safe_serialization=True)
    for f in os.listdir(out):  # config.json + model.safetensors only (no generation_config.json)
        if f not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(out, f))

    # Reload what was saved, so that the reference is computed from the files cai reads.
    model = cls.from_pretrained(out, attn_implementation="eager", torch_dtype=torch.float32)
    model.eval()
    rng = np.random.default_rng(100 + seed)
    V = config.vocab_size
    ids = rng.integers(0, V, size=(B, T)).astype(np.int32)
    targets = np.concatenate([ids[:, 1:], rng.integers(0, V, size=(B, 1))], axis=1).astype(np.int32)
    targets[0, 2] = -1  # a masked target
    targets[1, 4] = -1
    model.zero_grad()
    logits = model(input_ids=torch.from_numpy(ids).long()).logits
    loss = F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(targets).long().reshape(-1),
                           ignore_index=-1, reduction="mean")
    loss.backward()

    layout = ("; GPT-2 Conv1D gradients are (in, out) as Hugging Face stores the weights"
              if config.model_type == "gpt2" else "")
    expected = {
        "ids": ids,
        "targets": targets,
        "logits": logits.detach().numpy().astype(np.float32),
        "loss": np.array(loss.item(), dtype=np.float32),
    }
    for hf_name, p in model.named_parameters():
        expected["grad." + cai_name(hf_name)] = p.grad.detach().numpy().astype(np.float32)
    save_file({k: np.ascontiguousarray(v) for k, v in expected.items()},
              os.path.join(out, "expected.safetensors"),
              # one metadata key: safetensors writes several in a random order, and a rerun should
              # write the same bytes
              metadata={"generator": f"make_fixtures.py, torch {torch.__version__}, transformers "
                                     f"{transformers.__version__}" + layout})
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{name}: loss {loss.item():.6f}, {len(expected) - 4} gradients, {size} bytes in {out}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "data", "model", "torch")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    for name, config, cls, seed in configs():
        make(os.path.abspath(root), name, config, cls, seed)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")


if __name__ == "__main__":
    main()
