"""A subnet owner's incentive mechanism: the validator's `http` scorer asks it for challenges and
has it score the miners' answers.

Run it, then in the validator's config.toml (and restart the node):

    [validator.scorers.sort]
    kind = "http"
    url = "http://127.0.0.1:8092/"
"""

import random

import meshmind

WORDS = ["amber", "basil", "cobalt", "dune", "elm", "flint", "gale", "hazel", "indigo", "jade"]
scorer = meshmind.Scorer()


@scorer.challenge("sort")
def make(task: str) -> meshmind.Challenge:
    words = random.sample(WORDS, 6)
    # `expected` stays with the validator; only `input` goes to the miners.
    return meshmind.Challenge(input=" ".join(words), expected=" ".join(sorted(words)))


@scorer.score("sort")
def judge(round: meshmind.Round) -> list[float]:
    expected = round.expected.split()
    scores = []
    for answer in round.answers:
        words = answer.text.split()
        in_place = sum(a == b for a, b in zip(words, expected))
        scores.append(1.0 if words == expected else 0.5 * in_place / len(expected))
    return scores


if __name__ == "__main__":
    scorer.serve(port=8092)
