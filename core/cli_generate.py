"""`tinyc generate MODEL_DIR --prompt TEXT`: stream an LLM's text to stdout
as it decodes, then the prefill and decode speed to stderr; --json prints one
JSON document at the end instead. Ctrl-C stops the generation: what was
generated so far and the figures are still printed, and the exit code is 130.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_generate_command(sub) -> None:
    g = sub.add_parser("generate", help="generate text with an LLM folder (onnx + tokenizer)")
    model = g.add_argument("model_dir", metavar="MODEL_DIR",
                           help="a folder with the .onnx decoder, genai_config.json or "
                                "config.json, and tokenizer.json (or the .onnx in it)")
    _complete_dirs(model)
    g.add_argument("--prompt", required=True, help="the text to continue")
    g.add_argument("--max-new-tokens", type=_count, default=128, metavar="N",
                   help="stop after N tokens (default 128; also at eos or the context length)")
    g.add_argument("--temperature", type=_non_negative, default=0.0, metavar="T",
                   help="0 (default): greedy; above 0: sample")
    g.add_argument("--top-k", type=_count, default=0, metavar="K",
                   help="sample among the K most likely tokens (0: all)")
    g.add_argument("--top-p", type=_probability, default=1.0, metavar="P",
                   help="sample among the most likely tokens whose probability reaches P")
    g.add_argument("--seed", type=int, default=None, metavar="S", help="repeatable sampling")
    g.add_argument("--threads", type=_positive, default=None, metavar="N",
                   help="threads the decoder runs on (default: every core, or TINYC_NUM_THREADS)")
    g.add_argument("--target", default=None, help="default: this host")
    g.add_argument("--json", action="store_true",
                   help="print the text, tokens and figures as JSON at the end")
    g.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from .cli_progress import compile_progress
    from .llm import Sampling, load

    sampling = Sampling(args.temperature, args.top_k, args.top_p, args.seed)
    lm = load(args.model_dir, args.target, args.threads,
              progress=lambda label, timings: compile_progress(label, timings,
                                                               enabled=not args.json))
    generation = lm.generate(args.prompt, args.max_new_tokens, sampling)
    status = 0
    try:
        for piece in generation:
            if not args.json:
                sys.stdout.write(piece)
                sys.stdout.flush()
    except KeyboardInterrupt:
        generation.stop_reason, status = "interrupted", 130
    stats = generation.stats
    if args.json:
        print(json.dumps({"model": args.model_dir, "prompt": args.prompt,
                          "text": generation.text, "tokens": generation.tokens, **stats},
                         indent=1))
    else:
        print(flush=True)
        print(_summary(stats), file=sys.stderr)
    return status


def _summary(s: dict) -> str:
    def rate(v):
        return f"{v:.1f} tokens/s" if v is not None else "-"

    return (f"prompt {s['prompt_tokens']} tokens, prefill {rate(s['prefill_tokens_per_s'])}; "
            f"{s['new_tokens']} new tokens, decode {rate(s['decode_tokens_per_s'])} "
            f"(stopped: {s['stop_reason']}; load {s['load_s']:.2f} s)")


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number >= 0")
    return int(text)


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 0")
    return value


def _probability(text: str) -> float:
    value = _non_negative(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be in (0, 1]")
    return value


def _complete_dirs(action) -> None:
    """Complete MODEL_DIR with folders when argcomplete is installed."""
    try:
        from argcomplete.completers import DirectoriesCompleter
    except ModuleNotFoundError:
        return
    action.completer = DirectoriesCompleter()
