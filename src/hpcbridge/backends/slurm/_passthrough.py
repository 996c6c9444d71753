"""sbatch options a spec passes through (``sbatch_args``), and ``priority`` as ``--nice``.

hpcbridge sets some sbatch options itself, from spec fields or for its own bookkeeping
(the job name carries the attempt's token, the output files, requeue for checkpoints); a
passed-through option that would change one of those is refused, naming the field to use.
"""

from __future__ import annotations

from collections.abc import Sequence

from hpcbridge.spec import JobSpec

MANAGED: dict[str, str] = {
    "--job-name": "name (hpcbridge names jobs after their attempt)",
    "--output": "nothing: hpcbridge writes logs to the cluster's log_dir",
    "--error": "nothing: hpcbridge writes logs to the cluster's log_dir",
    "--open-mode": "nothing: hpcbridge appends to its logs across requeues",
    "--chdir": "the cluster's workdir, or submit from that directory",
    "--export": "env",
    "--comment": "nothing: hpcbridge keeps its job id there",
    "--parsable": "nothing: hpcbridge reads sbatch's answer itself",
    "--wrap": "command or script",
    "--array": "array",
    "--requeue": "checkpoint (a job with a checkpoint policy is requeued)",
    "--no-requeue": "checkpoint (a job with a checkpoint policy is requeued)",
    "--signal": "checkpoint.signal and checkpoint.grace",
    "--partition": "placement.partition",
    "--constraint": "placement.features",
    "--switches": "placement.max_switches",
    "--time": "resources.walltime",
    "--nodes": "resources.nodes",
    "--ntasks": "resources.tasks_per_node",
    "--ntasks-per-node": "resources.tasks_per_node",
    "--cpus-per-task": "resources.cpus_per_task",
    "--mem": "resources.mem",
    "--mem-per-cpu": "resources.mem",
    "--mem-per-gpu": "resources.mem",
    "--gres": "resources.gpus and resources.gpu_type",
    "--gpus": "resources.gpus and resources.gpu_type",
    "--gpus-per-node": "resources.gpus and resources.gpu_type",
    "--licenses": "licences",
    "--deadline": "deadline",
    "--account": "account",
    "--qos": "qos",
    "--reservation": "reservation",
    "--nice": "priority",
    "--test-only": "nothing: 'hpcbridge validate' asks sbatch --test-only",
}
"""Long options hpcbridge sets itself -> the spec field that says it instead."""


def sbatch_args_problems(args: Sequence[str]) -> list[str]:
    problems = []
    for arg in args:
        option = arg.split("=", 1)[0]
        use = MANAGED.get(option)
        if use is not None:
            problems.append(
                f"sbatch_args: {option} is set by hpcbridge; instead use {use}"
                if not use.startswith("nothing")
                else f"sbatch_args: {option} is set by hpcbridge; remove it ({use[9:]})"
            )
    return problems


def priority_problems(spec: JobSpec, cluster: str, negative_nice: bool) -> list[str]:
    """A positive priority is a negative nice, which only a Slurm operator or administrator
    may set: refused unless the cluster says hpcbridge submits as one."""
    if spec.priority > 0 and not negative_nice:
        return [
            f"priority: {spec.priority} means sbatch --nice={-spec.priority}, and only a Slurm "
            f"operator or administrator may lower a job's nice; set negative_nice: true for "
            f"cluster {cluster} if hpcbridge submits as one, or use priority <= 0 (or a qos)"
        ]
    return []


def check_passthrough(
    spec: JobSpec, cluster: str, transport: str, negative_nice: bool
) -> list[str]:
    problems = sbatch_args_problems(spec.sbatch_args)
    if spec.sbatch_args and transport == "rest":
        problems.append(
            f"sbatch_args: cluster {cluster} uses slurmrestd, which takes no sbatch options; "
            "remove them or use transport: cli"
        )
    return problems + priority_problems(spec, cluster, negative_nice)
