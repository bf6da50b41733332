"""pgrun's Hydra launcher for Ray: `pgrun -m hydra/launcher=ray hydra.launcher.address=<head>:6379 ...`.

Each Hydra job is one Ray task on the cluster `ray.init(address=...)` connects to (null: a
local Ray instance). pgrun ships it because the official hydra-ray-launcher (1.2.2) pins
cloudpickle < 3, which conflicts with joblib >= 1.5 (hydra-joblib-launcher), and pulls in boto3
for its AWS launcher. Its config is pgrun's configs/hydra/launcher/ray.yaml.
"""
