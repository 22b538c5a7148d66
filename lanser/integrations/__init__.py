"""Adapters for RL trainers (SkyRL, verl, TRL, OpenRLHF) and converters of agent trajectories.

Every framework is imported lazily, inside its own module: ``import lanser.integrations`` needs
none of them.  See the README, "RL integrations".
"""
