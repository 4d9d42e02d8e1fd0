#!/usr/bin/env python3
"""Writes two_moons.csv, the data file of the custom-task example (docs/extending.md, "Bring your own task").

The rule, so that the file can be checked or regenerated (python3 make_two_moons.py > two_moons.csv), with only
the standard library: Python's Mersenne Twister seeded with 2024 gives, for each of the 400 rows in turn,
  label = 1 if u1 < 0.5 else 0,   angle t = pi * u2,   two normal draws n1, n2 (Box-Muller from u3, u4),
where u1..u4 are four consecutive random.random() values (seeded random() is stable across Python 3 releases).
Label 0 lies on the upper half circle (cos t, sin t), label 1 on the lower one shifted right and up,
(1 - cos t, 0.5 - sin t); both get Gaussian noise of standard deviation 0.2 per coordinate. The two classes
interleave, so a linear model cannot separate them and a small MLP can. Values are written with 4 decimals.
"""
import math
import random

ROWS = 400
NOISE = 0.2


def main():
    rng = random.Random(2024)
    print("x1,x2,label")
    for _ in range(ROWS):
        u1, u2, u3, u4 = rng.random(), rng.random(), rng.random(), rng.random()
        label = 1 if u1 < 0.5 else 0
        t = math.pi * u2
        # Box-Muller: 1 - u3 lies in (0, 1], so the logarithm is finite.
        r = math.sqrt(-2.0 * math.log(1.0 - u3))
        n1, n2 = r * math.cos(2.0 * math.pi * u4), r * math.sin(2.0 * math.pi * u4)
        if label == 0:
            x1, x2 = math.cos(t), math.sin(t)
        else:
            x1, x2 = 1.0 - math.cos(t), 0.5 - math.sin(t)
        print(f"{x1 + NOISE * n1:.4f},{x2 + NOISE * n2:.4f},{label}")


if __name__ == "__main__":
    main()
