"""``swerl init-model --tiny``: a small random-init Llama and a tokenizer built without any download.

The tokenizer is a byte-level BPE trained in-process on the SWE-RL prompt wording, the answer format
and the sample world's code, wrapped in :class:`~transformers.PreTrainedTokenizerFast` with Llama 3
style special tokens and chat template; the model is a :class:`~transformers.LlamaForCausalLM` of a
few million parameters. Both are saved with ``save_pretrained`` and load offline with the ``Auto*``
classes. A random model never writes the answer format: train it with ``swerl train --stage sft``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from swerl_core.demo.errors import DemoError
from swerl_core.demo.sample_snapshot import sample_texts
from swerl_core.prompts import SYSTEM_PROMPT, fixed_wording, oracle_answer, repair_prompt
from swerl_core.search_replace import Edit
from swerl_core.train.examples import THOUGHT

BOS, EOS, PAD = "<|begin_of_text|>", "<|eot_id|>", "<|pad|>"
HEADER_OPEN, HEADER_CLOSE, END_OF_TEXT = "<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"
SPECIAL_TOKENS = (BOS, END_OF_TEXT, HEADER_OPEN, HEADER_CLOSE, EOS, PAD)

# Llama 3's layout: a header per message, <|eot_id|> after each; generation stops at <|eot_id|>.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the tiny model (defaults: about 3 M parameters, fast enough for CPU GRPO)."""

    vocab_size: int = 4096
    hidden_size: int = 256
    intermediate_size: int = 688
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    max_positions: int = 4096
    seed: int = 0
    tie_embeddings: bool = False  # output layer = input embedding transposed: copying a token is the easy map


# The toy wiring check's shape (deployments/configs/toy-cpu.yaml): half the default width and layers,
# enough to learn the 4 toy answers in under a hundred SFT steps on a CPU.
TOY_SPEC = TinyModelSpec(hidden_size=128, intermediate_size=344, num_layers=2, num_heads=4, num_kv_heads=2)

# The learnable world's shape (deployments/configs/learnable-cpu.yaml): the toy width and depth with tied
# embeddings and full heads. It takes the induction warm-up (swerl_core.demo.induction) in under 3 minutes on
# 2 cores, where the 4-layer default took 25, and still leaves GRPO room above SFT (docs/training.md).
LEARNABLE_SPEC = TinyModelSpec(
    hidden_size=128, intermediate_size=352, num_layers=2, num_heads=4, num_kv_heads=4, tie_embeddings=True
)


def tokenizer_corpus(extra: Iterable[str] = ()) -> list[str]:
    """Texts the tiny tokenizer learns from: prompt wording, an example answer, the sample world, ``extra``."""
    code = sample_texts()
    edit = Edit("src/toolkit/core.py", "    return a - b", "    return a + b")
    example = oracle_answer(THOUGHT.format(title="add subtracts", names=edit.path), [edit])
    roles = "".join(f"{HEADER_OPEN}{role}{HEADER_CLOSE}\n\n" for role in ("system", "user", "assistant"))
    return [SYSTEM_PROMPT, repair_prompt(code[-2], {"src/toolkit/core.py": code[0]}), example, roles, *code, *extra]


def build_tokenizer(spec: TinyModelSpec = TinyModelSpec(), corpus: Iterable[str] = ()) -> object:
    """A byte-level BPE :class:`~transformers.PreTrainedTokenizerFast` trained on :func:`tokenizer_corpus`."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    # Every newline is a token of its own: otherwise the generation prompt's closing "\n\n" is one token
    # when the prompt is tokenized alone (GRPO, evaluation) but two when an answer follows it (SFT), and the
    # model would be trained on a context it never sees when it generates.
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("\n", behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte stays encodable
        show_progress=False,
    )
    bpe.train_from_iterator(tokenizer_corpus(corpus), trainer=trainer)
    # The prompt's fixed wording, one token per piece: a prompt is then ~110 tokens instead of ~460 (learnable world).
    bpe.add_tokens([AddedToken(text, normalized=False, special=False) for text in fixed_wording()])
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        model_max_length=spec.max_positions,
        padding_side="left",
    )


def init_tiny_model(out_dir: Path | str, spec: TinyModelSpec = TinyModelSpec(), corpus: Iterable[str] = ()) -> Path:
    """Build and save the tiny model and its tokenizer in ``out_dir``; returns the directory.

    ``corpus`` adds tokenizer training texts (e.g. :func:`swerl_core.demo.learnable.learnable_texts`, so that
    the identifiers of the world the model trains on become whole tokens).
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = build_tokenizer(spec, corpus)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}  # type: ignore[attr-defined]
    config = LlamaConfig(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_positions,
        bos_token_id=ids[BOS],
        eos_token_id=ids[EOS],
        pad_token_id=ids[PAD],
        tie_word_embeddings=spec.tie_embeddings,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids[BOS], eos_token_id=ids[EOS], pad_token_id=ids[PAD], do_sample=True, top_k=0
    )  # top_k=0 as in TRL's GRPO sampling, so that evaluation samples as training did
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot create model directory {out}: {exc.strerror or exc}") from None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)  # type: ignore[attr-defined]
    return out


def parameter_count(model_dir: Path | str) -> int:
    """Number of parameters of the model saved in ``model_dir`` (read from its config, no weights loaded)."""
    from transformers import AutoConfig

    from swerl_core.train.plan import count_parameters

    return count_parameters(AutoConfig.from_pretrained(model_dir))
