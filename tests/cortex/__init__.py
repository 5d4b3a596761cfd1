"""Tests of the TheHive Cortex analyzer (connector/platforms/cortex), driven as Cortex runs it."""
