"""The README's TRL example, run: GRPOTrainer (TRL 1.16) on the exported names Llama with langan's discriminator as
its reward. Needs `pip install trl` beside langan[hf] (not pinned: TRL pulls datasets, pandas, pyarrow), and the runs of
`benchmarks/hf_roundtrip.py train`.

    python benchmarks/trl_grpo_example.py
"""
import time

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from langan.reward import DiscriminatorReward

reward = DiscriminatorReward("runs/hf/adv-ft-s0")
print(reward(prompts=["", ""], completions=["emma", "xqzv"]), reward.token_scores(["emma"]))
ds = Dataset.from_dict({"prompt": [""] * 64})
args = GRPOConfig(output_dir="/tmp/grpo", num_generations=8, max_completion_length=16, per_device_train_batch_size=8,
                  max_steps=8, learning_rate=1e-4, logging_steps=1, report_to=[], use_cpu=True, save_strategy="no",
                  temperature=1.0)
trainer = GRPOTrainer(model="runs/hf/names-llama", reward_funcs=reward, train_dataset=ds, args=args)
t0 = time.time()
trainer.train()
print("grpo steps done in", round(time.time() - t0, 1), "s")
for row in trainer.state.log_history:
    if "reward" in row:
        print(row.get("step"), "reward", round(row["reward"], 4))
