"""Tiny offline text LM + tokenizer for the interleaving tests (built in a temp folder)."""
# fixtures are re-exported by the test modules that use them (no conftest: name clashes)

from __future__ import annotations

from pathlib import Path

WORDS = ("the a cat dog bird fish sat ran flew swam on in under mat tree sky sea "
         "red blue big small happy sad and then saw ate").split()


def build_text_lm(folder: Path, family: str = "llama", tie: bool = True, seed: int = 0) -> Path:
    """Save a word-level tokenizer and a random 2-layer Llama/Qwen2 LM to ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>")
    torch.manual_seed(seed)
    kw = dict(vocab_size=len(vocab) + 2, hidden_size=32, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
              tie_word_embeddings=tie, max_position_embeddings=512, bos_token_id=1,
              eos_token_id=2)
    if family == "qwen2":
        lm = Qwen2ForCausalLM(Qwen2Config(**kw))
    else:
        lm = LlamaForCausalLM(LlamaConfig(rope_theta=50000.0, **kw))
    lm.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
