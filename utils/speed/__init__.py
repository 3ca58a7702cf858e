"""Speed: the device and what it can run, the levers (--amp, --channels_last, --compile) and their
measured choice, the numerics guard that never waits for the device."""
SPEED_FLAGS = ("amp", "channels_last", "compile")  # the flags --levers auto chooses (bench, levers, run key)
