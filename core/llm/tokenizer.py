"""tokenizer.json through Hugging Face's `tokenizers` (the `llm` extra), and
incremental detokenization for streaming.

A token is not always whole text: a byte-level BPE splits a multi-byte
character over several tokens, and a SentencePiece-style decoder drops the
space of a word-initial piece at the start of a string. So a new token's text
is the difference between decoding a short window of tokens with it and
without it, and is held back while it ends in an incomplete character (U+FFFD,
which decode() puts for a partial UTF-8 sequence) - the way text-generation
servers stream.
"""

from __future__ import annotations

from ..errors import ModelFolderError

REPLACEMENT = "\ufffd"
CONTEXT_TOKENS = 5  # prompt tokens decoded before the first new one (for its spacing)


def load_tokenizer(path: str):
    try:
        from tokenizers import Tokenizer
    except ModuleNotFoundError:
        raise ModelFolderError("reading tokenizer.json needs the tokenizers library: "
                               "pip install 'tinyc[llm]'") from None
    try:
        return Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises a bare Exception for a malformed file
        raise ModelFolderError(f"{path}: not a tokenizers file ({e})") from None


class TextStream:
    """push(token) -> the text it completes ('' while a character is partial);
    finish() -> what is still held back."""

    def __init__(self, tokenizer, context: list[int] | tuple = ()):
        self._tok = tokenizer
        self._ids = list(context)[-CONTEXT_TOKENS:]
        self._prefix = 0  # window start: the tokens decoded for spacing context
        self._read = len(self._ids)  # tokens up to here are already printed

    def push(self, token: int) -> str:
        self._ids.append(int(token))
        before = self._decode(self._ids[self._prefix:self._read])
        after = self._decode(self._ids[self._prefix:])
        if len(after) <= len(before) or after.endswith(REPLACEMENT):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return after[len(before):]

    def finish(self) -> str:
        """The held-back text of the last tokens (with U+FFFD for a partial character)."""
        before = self._decode(self._ids[self._prefix:self._read])
        after = self._decode(self._ids[self._prefix:])
        self._prefix = self._read = len(self._ids)
        return after[len(before):]

    def _decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True) if ids else ""
