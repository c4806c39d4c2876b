"""The front door: the `gaitstream` command and the end-to-end demo; imports every layer below it."""
