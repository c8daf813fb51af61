"""A subnet owner's incentive mechanism in Python: the validator's `exec` scorer for the task
`sort`. It speaks the exec protocol (one JSON line per request on stdin, one per reply on
stdout); the two tasks are `challenge` (make an input) and `score` (judge the answers).

Every call is also written to the file named by the first argument, so a test can see it ran.
"""

import json
import random
import sys

WORDS = ["amber", "basil", "cobalt", "dune", "elm", "flint", "gale", "hazel", "indigo", "jade"]


def challenge(request):
    words = random.sample(WORDS, 6)
    text = " ".join(words)
    return {"input": text, "expected": " ".join(sorted(words))}


def score(request):
    expected = request["expected"]
    scores = []
    for answer in request["answers"]:
        output = answer["output"]
        if output == expected:
            scores.append(1.0)
        else:
            # Partial credit for each word in its place: a mechanism of the owner's own design.
            right = sum(a == b for a, b in zip(output.split(), expected.split()))
            scores.append(0.5 * right / len(expected.split()) if output.split() else 0.0)
    return {"scores": scores}


def main():
    log = open(sys.argv[1], "a", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        body = json.loads(request["input"])
        if request["task"] == "challenge":
            output = challenge(body)
        else:
            output = score(body)
        log.write(json.dumps({"call": request["task"], "body": body, "output": output}) + "\n")
        print(json.dumps({"id": request["id"], "output": json.dumps(output)}), flush=True)


if __name__ == "__main__":
    main()
