"""How fast the course dataset generates (the foundation issue asks for 10,000 images in < 10 s).

    python benchmarks/bench_data.py
"""
import time

from vislib import data

data.make_shapes(10, size=64, seed=0)  # load and shrink the background photos once
for size in (32, 64):
    start = time.perf_counter()
    ds = data.make_shapes(10_000, size=size, seed=0)
    print(f"10,000 images at {size} px: {time.perf_counter() - start:.2f} s ({len(ds)} images)")
