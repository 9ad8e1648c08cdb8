"""Many works, many machines (DESIGN.md): the messages that cross between processes, over
ZeroMQ (pyzmq). ``wire`` encodes and checks them; ``portal`` hands water over between works."""
