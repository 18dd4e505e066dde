"""slamkit checkpoints built the way slamkit writes them, and slamkit's scoring (tests only).

``write_slamkit_ckpt`` saves as slamkit's ``UnitLM.save_pretrained`` does (transformers 4.4x
``UnitLMConfig`` JSON, weights under ``lm.`` without the tied head); ``slamkit_tokenizer`` is
built like slamkit's ``UnitTokeniser`` (WordLevel over ``<Un{i}>`` = i + 2, ``<PAD>`` = 0,
``<S> $0 <S>``); ``load_like_slamkit`` does what ``UnitLM.from_pretrained`` does, offline.
"""

from __future__ import annotations

import json

import numpy as np
import torch

N_UNITS = 500


def _v4_base_config(hf_cfg, tied: bool) -> dict:
    """``Qwen2Config.to_dict()`` as transformers 4.48 writes it (what slamkit stores)."""
    return {
        "_attn_implementation_autoset": True, "_name_or_path": "Qwen/Qwen2.5-0.5B",
        "add_cross_attention": False, "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0, "bad_words_ids": None, "begin_suppress_tokens": None,
        "bos_token_id": 1, "chunk_size_feed_forward": 0, "cross_attention_hidden_size": None,
        "decoder_start_token_id": None, "diversity_penalty": 0.0, "do_sample": False,
        "early_stopping": False, "encoder_no_repeat_ngram_size": 0, "eos_token_id": 1,
        "exponential_decay_length_penalty": None, "finetuning_task": None,
        "forced_bos_token_id": None, "forced_eos_token_id": None, "hidden_act": "silu",
        "hidden_size": hf_cfg.hidden_size, "id2label": {"0": "LABEL_0", "1": "LABEL_1"},
        "initializer_range": 0.02, "intermediate_size": hf_cfg.intermediate_size,
        "is_decoder": False, "is_encoder_decoder": False, "label2id": {"LABEL_0": 0, "LABEL_1": 1},
        "length_penalty": 1.0, "max_length": 20, "max_position_embeddings": 256,
        "max_window_layers": 2, "min_length": 0, "model_type": "qwen2",
        "no_repeat_ngram_size": 0, "num_attention_heads": hf_cfg.num_attention_heads,
        "num_beam_groups": 1, "num_beams": 1, "num_hidden_layers": hf_cfg.num_hidden_layers,
        "num_key_value_heads": hf_cfg.num_key_value_heads, "num_return_sequences": 1,
        "output_attentions": False, "output_hidden_states": False, "output_scores": False,
        "pad_token_id": 0, "prefix": None, "problem_type": None, "pruned_heads": {},
        "remove_invalid_values": False, "repetition_penalty": 1.0, "return_dict": True,
        "return_dict_in_generate": False, "rms_norm_eps": 1e-06, "rope_scaling": None,
        "rope_theta": 10000, "sep_token_id": None, "sliding_window": None,
        "suppress_tokens": None, "task_specific_params": None, "temperature": 1.0,
        "tf_legacy_loss": False, "tie_encoder_decoder": False, "tie_word_embeddings": tied,
        "tokenizer_class": None, "top_k": 50, "top_p": 1.0, "torch_dtype": "float32",
        "torchscript": False, "transformers_version": "4.48.1", "typical_p": 1.0,
        "use_bfloat16": False, "use_cache": False, "use_sliding_window": False,
        "vocab_size": 502,
    }


def write_slamkit_ckpt(folder, tied: bool = True, tokeniser: bool = False, seed: int = 0):
    """A tiny random Qwen2 UnitLM saved as slamkit saves one; returns the HF model."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, Qwen2Config

    hf_cfg = Qwen2Config(vocab_size=N_UNITS + 2, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         rope_theta=10000.0, tie_word_embeddings=tied, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=1, eos_token_id=1)
    torch.manual_seed(seed)
    hf = AutoModelForCausalLM.from_config(hf_cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():  # random biases, norms and larger weights: a harder parity
            p.add_(torch.randn_like(p) * 0.05)
    folder.mkdir(parents=True)
    state = {f"lm.{k}": v.contiguous() for k, v in hf.state_dict().items()
             if not (tied and k == "lm_head.weight")}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["UnitLM"], "base_config": _v4_base_config(hf_cfg, tied),
              "base_model_name": "Qwen/Qwen2.5-0.5B", "max_position_embeddings": 256,
              "model_type": "speech_language_model", "tie_word_embeddings": tied,
              "torch_dtype": "float32", "transformers_version": "4.48.1",
              "trust_remote_code": None, "twist_init": True, "use_cache": False,
              "use_safetensors": None, "vocab_size": N_UNITS + 2}
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    if tokeniser:
        (folder / "tokeniser_config.json").write_text(json.dumps(
            {"dedup": True, "bos_eos_token_id": 1, "pad_token_id": 0, "num_units": N_UNITS,
             "load_fe": False}))
    return hf


def slamkit_tokenizer():
    """slamkit's unit tokenizer: <PAD>=0, <S>=1 around each sample, <Un{i}> = i + 2."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Split
    from tokenizers.processors import TemplateProcessing

    vocab = {f"<Un{i}>": i + 2 for i in range(N_UNITS)} | {"<PAD>": 0, "<S>": 1}
    tok = Tokenizer(WordLevel(vocab, unk_token="<UNK>"))
    tok.pre_tokenizer = Split(pattern=">", behavior="merged_with_previous")
    tok.enable_padding(pad_id=0, pad_token="<PAD>")
    tok.post_processor = TemplateProcessing(single="<S> $0 <S>", special_tokens=[("<S>", 1)])
    return tok


def slamkit_loglik(hf, unit_lists: list[list[int]]) -> np.ndarray:
    """slamkit's scoring: mean NLL of tokens after <S>, pad masked, no attention mask."""
    tok = slamkit_tokenizer()
    enc = tok.encode_batch(["".join(f"<Un{u}>" for u in us) for us in unit_lists])
    ids = torch.tensor([e.ids for e in enc])
    with torch.no_grad():
        logits = hf(input_ids=ids).logits.float()
    target = ids[:, 1:].clone()
    mask = target.ne(0)
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), target.flatten(),
                                            reduction="none").view(target.shape)
    return (-(nll * mask).sum(-1) / mask.sum(-1)).numpy()


def load_like_slamkit(folder):
    """What slamkit's ``UnitLM.from_pretrained`` does, offline: the wrapped model from
    ``base_config``, resized to ``vocab_size``, then the ``lm.`` weights (strict)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    raw = json.loads((folder / "config.json").read_text())
    base = {k: v for k, v in raw["base_config"].items() if k not in ("torch_dtype", "model_type")}
    hf = AutoModelForCausalLM.from_config(AutoConfig.for_model(raw["base_config"]["model_type"],
                                                               **base))
    hf.resize_token_embeddings(raw["vocab_size"])
    state = {k.removeprefix("lm."): v for k, v in load_file(folder / "model.safetensors").items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= ({"lm_head.weight"} if raw["tie_word_embeddings"]
                                                else set())
    return hf.eval()
