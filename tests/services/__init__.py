"""Real services started for tests (HDFS daemons, ...), each on free loopback ports."""
