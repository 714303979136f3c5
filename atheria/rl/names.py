"""What config validation needs of the scheduler's agents without importing stable-baselines3 (seconds, and not
needed to refuse a bad `rl.algo`): the algorithm names that `rl.algo` accepts."""

ALGOS = ("ppo", "a2c", "sac")
