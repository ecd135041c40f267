# Ablation (LIFT Table 5) on the offline demo: tested without test-time ensembling (the plain test pipeline).
_base_ = ['../lift_demo.py']
