"""Incremental detokenization (tokenizer.TextStream): streamed pieces add up
to the decoded text, with no half characters and the spaces a whole decode
has."""

from __future__ import annotations

import pytest
from tests_support import need_modules

from tinyc.errors import ModelFolderError
from tinyc.llm.tokenizer import TextStream, load_tokenizer

TEXT = "Grüße aus München 🙂, le café était très chaud. 日本語 東京"


@pytest.fixture(scope="module")
def byte_bpe(tmp_path_factory):
    need_modules("tokenizers")
    from tinyc.testing.llm_folders import train_tokenizer

    path = str(tmp_path_factory.mktemp("tok") / "tokenizer.json")
    return load_tokenizer(train_tokenizer(path, vocab=400))


def test_multi_byte_characters_stream_whole(byte_bpe):
    ids = byte_bpe.encode(TEXT).ids
    stream = TextStream(byte_bpe)
    pieces = [stream.push(t) for t in ids]
    assert "".join(pieces) + stream.finish() == TEXT
    assert not any("\ufffd" in p for p in pieces)
    assert "" in pieces  # some tokens hold half a character: they print nothing yet
    assert len([p for p in pieces if p]) > 5  # and the rest stream as they come


def test_a_partial_character_at_the_end_is_flushed_as_a_replacement(byte_bpe):
    emoji_bytes = [byte_bpe.token_to_id(t) for t in ("ð", "Ł")]  # the first 2 of 🙂's 4 bytes
    stream = TextStream(byte_bpe)
    assert [stream.push(t) for t in emoji_bytes] == ["", ""]
    assert stream.finish() == "\ufffd"


def test_word_initial_pieces_keep_their_space_after_the_prompt():
    need_modules("tokenizers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    tok.train_from_iterator(["once upon a time there was a tiny compiler"] * 3,
                            trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>"],
                                                show_progress=False))
    ids = tok.encode("once upon a time there was").ids
    prompt, rest = ids[:2], ids[2:]
    # decoded alone, a word-initial piece loses its space (SentencePiece's rule)
    assert not tok.decode(rest[:1]).startswith(" ")
    stream = TextStream(tok, prompt)
    text = "".join(stream.push(t) for t in rest) + stream.finish()
    assert tok.decode(prompt) + text == "once upon a time there was"
    assert text.startswith(" ")


def test_a_malformed_tokenizer_file_is_a_clear_error(tmp_path):
    need_modules("tokenizers")
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"version": "1.0", "model": 3}')
    with pytest.raises(ModelFolderError, match="not a tokenizers file"):
        load_tokenizer(str(bad))
