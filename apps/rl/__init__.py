"""The reinforcement-learning application: a DQN agent with the Rainbow parts (`dqn`), its
replay memory (`buffers`) and exploration/beta schedules (`schedules`). The Q-networks live
in `models.rl`."""
