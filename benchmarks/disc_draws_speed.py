"""Benchmark: a REINFORCE step's fresh discriminator batches drawn in one call against one call each.

    python benchmarks/disc_draws_speed.py RUN [--steps 10] [--rounds 4] [--threads 2]

With train.disc_steps_per_gen_step = 3 and disc_fresh_samples, a step's second and third D updates see fresh
samples. `Reinforce.disc_fakes` draws them together (one pass of the sampler over 2 x batch rows, split); the
reference here draws them one call each, as langan did before. Loads RUN (e.g. configs/names-scratch.yaml after some
training, so its samples have realistic lengths) and times, alternately in one process, `--rounds` blocks of
`--steps` whole adversarial steps with each. Prints the median ms per step and the ratio.
"""

from __future__ import annotations

import statistics

from gan_step_speed import load_reinforce, step_benchmark_args, timed


def main() -> None:
    args = step_benchmark_args(__doc__, steps=10, rounds=4).parse_args()
    loaded, batches = load_reinforce(args)
    alg, cfg = loaded.algorithm, loaded.cfg
    together = alg.disc_fakes

    def one_call_each(n: int, last):  # the reference: G's batch, then one draw per later D update
        fakes = [] if last is None else [last.tokens]
        while len(fakes) < cfg.train.disc_steps_per_gen_step:
            fakes.append(alg.draw(n).tokens)
        return fakes

    times: dict[str, list[float]] = {"one call each": [], "one call": []}
    for _ in range(args.rounds):
        for variant in times:
            alg.disc_fakes = one_call_each if variant == "one call each" else together
            step = lambda: alg.adversarial_step(next(batches), train_gen=True)
            step()  # warm-up
            times[variant].append(timed(step, args.steps))
    each, once = (statistics.median(times[v]) for v in times)
    print(f"{args.run}: {args.rounds} rounds x {args.steps} steps, {args.threads} threads, "
          f"disc_steps_per_gen_step {cfg.train.disc_steps_per_gen_step}; median ms per adversarial step\n")
    print(f"| one call each | one call | ratio |\n|---|---|---|\n| {each:.1f} | {once:.1f} | {each / once:.2f}x |")


if __name__ == "__main__":
    main()
