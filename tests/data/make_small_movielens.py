"""Write tests/data/u.data: a small seeded file in the MovieLens u.data format.

40 items x 30 users, 600 distinct ratings in 1..5 from a rank-2 preference
model, in random order (like the authors' permuted copy). Tests and the test
preset use it; they never read the real ML-100K.
"""

from pathlib import Path

import numpy as np

rng = np.random.default_rng(100)
items, users, count = 40, 30, 600
scores = rng.standard_normal((items, 2)) @ rng.standard_normal((2, users))
ratings = np.clip(np.round(3 + scores), 1, 5).astype(int)
flat = rng.choice(items * users - 1, size=count - 1, replace=False)
# The last entry is always present, so the matrix has the full 40 x 30 shape.
flat = np.append(flat, items * users - 1)
rng.shuffle(flat)
lines = [f"{f % users + 1}\t{f // users + 1}\t{ratings[f // users, f % users]}\t0" for f in flat]
Path(__file__).with_name("u.data").write_text("\n".join(lines) + "\n")
