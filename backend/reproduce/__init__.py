"""The reproduction suite: the headline claims of Coste et al. (ICLR 2024) and Gao et al.
(ICML 2023), measured in our world over seeds, each with a verdict computed from the numbers.

Pure functions, one module per job, in the order they are used:
  plan.py      plan(seeds, size): the suite's experiments (configs), each with a key
  analysis.py  analyze(plan, results, arrays): seed-mean curves and per-seed numbers
  claims.py    evaluate(analysis): the claims (paper statement, what we measured, verdict) and
               the thresholds the verdicts come from
  report.py    report_markdown(...): report.md
Running the experiments and keeping reports is db/reproduce.py; the figures and the standalone
HTML page are app/report.py; the command is `python -m backend reproduce` (app/cli.py,
docs/reproduce.md).

Best-of-n needs one experiment per (seed, label noise): an ensemble of 8 members scored once.
The single-RM, mean, WCO and UWO curves over the paper's 5 members, every ensemble size 1..8 and
every UWO lambda are computed from that one score matrix (backend.best_of_n), so they cost
fractions of a second. PPO needs one training run per (seed, objective, beta): the expensive part.

Shape letters: P prompts, N answers per prompt, K members, S seeds.
"""
