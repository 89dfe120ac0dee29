"""Framework-free ML core of Superalign: attacker, learner, critic, training, evaluation.

Nothing in this package imports Django: callers pass plain data in and store what comes out.
"""
