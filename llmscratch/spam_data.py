"""The SMS Spam Collection: loading, de-duplication, stratified splits, and the baselines.

Taught in chapter 7. The corpus (Almeida, Gómez Hidalgo and Yamakami 2011) holds 5,574
text messages labelled ``ham`` or ``spam``; 403 of them are exact repeats of another
message (the same advert sent many times, "Sorry, I'll call later"), always with the
same label, and 84 more are near copies: the same letters with another phone number,
price, case, spacing or punctuation (the same advert with a curly quote, "Ok..." and
"Ok"). A split of the raw rows would put copies of one message on both sides and let a
model score test items it has memorised, so :func:`load_sms_spam` keeps the first
occurrence of each :func:`near_duplicate_key`, and :func:`spam_splits` splits the
distinct messages.

The baselines a fine-tuned model has to beat are here too: :func:`majority_baseline`
(always predict the commoner class) and :func:`tfidf_baseline` (scikit-learn's TF-IDF
over character n-grams, then logistic regression).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from .data import fetch
from .validate import check_float, check_int

LABELS = ("ham", "spam")  # class ids 0 and 1
CITATION = ("Almeida, T. A., Gómez Hidalgo, J. M., and Yamakami, A. (2011). Contributions to the "
            "study of SMS spam filtering: new collection and results. Proceedings of the 11th ACM "
            "Symposium on Document Engineering (DocEng'11), 259-262.")


def near_duplicate_key(text: str) -> str:
    """What two messages must share to count as one: their letters a-z, lower-cased
    (digits, spaces, punctuation and other characters dropped), or the whole text if it
    has no such letter (``":-)"``).

    Raises:
        TypeError: if ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return re.sub(r"[^a-z]", "", text.lower()) or text


def load_sms_spam() -> tuple[pd.DataFrame, int, int]:
    """The distinct messages of the corpus, and how many rows were dropped as copies.

    Returns:
        ``(frame, n_repeats, n_near)``: ``frame`` has columns ``text`` (str) and
        ``label`` (0 = ham, 1 = spam), one row per :func:`near_duplicate_key`, in file
        order (first occurrence kept); ``n_repeats`` rows were dropped as exact repeats
        of an earlier text, ``n_near`` more as near copies (another text, the same key).

    Raises:
        ~llmscratch.sources.DataDownloadError: the file could not be obtained
            (:func:`llmscratch.data.fetch`).
        ValueError: a line that is not ``label<TAB>text`` with a known label, or one
            key with two labels.
    """
    rows = []
    with open(fetch("sms_spam"), encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            label, sep, text = line.rstrip("\n").partition("\t")
            if not sep or label not in LABELS:
                raise ValueError(f"sms_spam line {number} is not 'ham|spam<TAB>text': {line[:60]!r}")
            rows.append((text, LABELS.index(label)))
    frame = pd.DataFrame(rows, columns=["text", "label"])
    keys = frame["text"].map(near_duplicate_key)
    if (frame.groupby(keys)["label"].nunique() > 1).any():
        raise ValueError("two copies of one message carry both labels; the corpus is not the expected file")
    n_texts = frame["text"].nunique()
    distinct = frame[~keys.duplicated(keep="first")].reset_index(drop=True)
    return distinct, len(frame) - n_texts, n_texts - len(distinct)


@dataclass(frozen=True)
class SpamSplits:
    """Stratified train / validation / test parts of the distinct messages (frames as
    :func:`load_sms_spam`'s), plus ``balanced_test``: every spam message of ``test`` and
    as many ham messages drawn from ``test`` at random, as Raschka's chapter 6 balances
    its splits. ``n_repeats`` exact repeats and ``n_near`` near copies were dropped
    before splitting (:func:`load_sms_spam`)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    balanced_test: pd.DataFrame
    n_repeats: int
    n_near: int


def spam_splits(*, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0) -> SpamSplits:
    """Split the distinct messages into train / validation / test, stratified by label.

    Args:
        val_fraction, test_fraction: shares of the distinct messages (each in (0, 0.5)).
        seed: seeds the split (scikit-learn's ``train_test_split``) and the ham drawn
            for the balanced test set.

    Raises:
        TypeError, ValueError: for a fraction outside (0, 0.5) or a negative seed.
    """
    check_float("val_fraction", val_fraction, minimum=0.0, maximum=0.5, min_inclusive=False,
                max_inclusive=False)
    check_float("test_fraction", test_fraction, minimum=0.0, maximum=0.5, min_inclusive=False,
                max_inclusive=False)
    check_int("seed", seed, minimum=0)
    frame, n_repeats, n_near = load_sms_spam()
    rest, test = train_test_split(frame, test_size=test_fraction, stratify=frame["label"],
                                  random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  stratify=rest["label"], random_state=seed)
    spam = test[test["label"] == 1]
    ham = test[test["label"] == 0].sample(n=len(spam), random_state=seed)
    balanced = pd.concat([spam, ham]).sort_index()
    parts = [p.sort_index().reset_index(drop=True) for p in (train, val, test)]
    return SpamSplits(*parts, balanced.reset_index(drop=True), n_repeats, n_near)


def majority_baseline(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Predictions ``(N,)`` of the class most frequent in ``train`` for every row of ``test``."""
    return np.full(len(test), int(train["label"].mode()[0]))


def tfidf_baseline(train: pd.DataFrame, *, ngram_range: tuple[int, int] = (1, 5), C: float = 10.0,
                   max_chars: int | None = None):
    """A fitted scikit-learn pipeline: TF-IDF over character n-grams, then logistic regression.

    Args:
        train: the frame to fit on (``text``, ``label``).
        ngram_range: the n-gram lengths (``analyzer="char_wb"``: n-grams inside words
            padded with spaces).
        C: the inverse L2 regularisation strength of the logistic regression.
        max_chars: if given, every text is cut to its first ``max_chars`` characters
            (at fit and at prediction), to see what a length limit costs.

    Returns:
        The pipeline; ``predict`` and ``predict_proba`` take a sequence of texts (cut
        the same way when ``max_chars`` is set).
    """
    cut = None if max_chars is None else check_int("max_chars", max_chars, minimum=1)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=True,
                                 preprocessor=(lambda s: s[:cut]) if cut else None)
    model = make_pipeline(vectorizer, LogisticRegression(C=C, max_iter=2000))
    return model.fit(list(train["text"]), train["label"].to_numpy())
