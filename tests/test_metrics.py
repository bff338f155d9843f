import pytest

from ocr_restore.metrics import Score, edit_distance, matched_words, normalise, score, word_hits


@pytest.mark.parametrize(
    "ref, hyp, distance",
    [("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("abc", "abc", 0),
     ("intention", "execution", 5), (["a", "b", "c"], ["a", "c"], 1)],
)
def test_edit_distance_hand_computed(ref, hyp, distance):
    assert edit_distance(ref, hyp) == distance


def test_edit_distance_matches_textbook_dynamic_programme():
    import random

    def textbook(a, b):
        d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
        return d[-1][-1]

    rng = random.Random(1)
    for _ in range(300):
        a = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 15)))
        b = "".join(rng.choice("abd ") for _ in range(rng.randint(0, 15)))
        assert edit_distance(a, b) == textbook(a, b)


def test_whitespace_and_case_normalisation():
    assert normalise("  Hello\n\tWorld  ") == "Hello World"
    assert normalise("Total: $9.99!", ignore_case=True, alnum_only=True) == "total 999"


def test_score_hand_computed():
    # "the cat sat" vs "the bat sat down": 1 substitution + 5 inserted chars (" down") = 6 over 11 chars;
    # words: cat->bat substitution + "down" insertion = 2 over 3 words; 2 of 3 words hit
    s = score("the cat\nsat", "the  bat sat down")
    assert (s.char_errors, s.chars, s.word_errors, s.words, s.word_hits) == (6, 11, 2, 3, 2)
    assert s.cer == pytest.approx(6 / 11)
    assert s.wer == pytest.approx(2 / 3)
    assert s.word_accuracy == pytest.approx(2 / 3)


def test_case_insensitive_scoring():
    assert score("TOTAL 12.50", "Total 12.50").cer > 0
    assert score("TOTAL 12.50", "Total 12.50", ignore_case=True).cer == 0


def test_scores_add_up_before_rates_are_taken():
    total = score("abcd", "abcd") + score("ab", "xy")
    assert total.cer == pytest.approx(2 / 6)  # micro average, not the mean of 0 and 1


def test_empty_reference():
    assert score("", "").cer == 0.0
    assert score("", "junk").cer == 1.0
    assert Score().word_accuracy == 1.0


def test_word_hits_is_longest_common_subsequence():
    assert word_hits("a b c d".split(), "a x c d".split()) == 3
    assert word_hits("a b".split(), "b a".split()) == 1


def test_word_hits_match_the_textbook_longest_common_subsequence():
    import random

    def textbook(a, b):
        d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i][j] = d[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(d[i - 1][j], d[i][j - 1])
        return d[-1][-1]

    rng = random.Random(2)
    words = ["the", "total", "9.99", "cash", "a"]
    for _ in range(300):
        a = [rng.choice(words) for _ in range(rng.randint(0, 9))]
        b = [rng.choice(words) for _ in range(rng.randint(0, 9))]
        assert word_hits(a, b) == textbook(a, b)


def test_matched_words_are_a_common_subsequence_as_long_as_the_longest():
    import random

    rng = random.Random(3)
    words = ["the", "total", "9.99", "cash", "a"]
    for _ in range(300):
        reference = [rng.choice(words) for _ in range(rng.randint(0, 9))]
        read = [rng.choice(words) for _ in range(rng.randint(0, 9))]
        matched = matched_words(" ".join(reference), read)
        kept = [word for word, match in zip(read, matched) if match]
        assert len(kept) == word_hits(reference, read)
        position = 0  # the matched words appear in the reference in order
        for word in kept:
            position = reference.index(word, position) + 1


def test_matched_words_score_as_score_does():
    assert matched_words("TOTAL: 9.99", ["total", "9.99", "--"], ignore_case=True) == [False, True, False]
    assert matched_words("TOTAL 9.99", ["Total", "..."], ignore_case=True, alnum_only=True) == [True, None]
