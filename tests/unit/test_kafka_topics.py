"""Every topic the project creates takes its replication from config (issue 12, item 7)."""

from __future__ import annotations

import pytest

from gaitstream import config
from gaitstream.clients import new_topic


def test_local_default_is_one_copy():
    topic = new_topic(config.load(env={}), "gait.samples", 4)
    assert (topic.name, topic.num_partitions, topic.replication_factor) == ("gait.samples", 4, 1)
    assert topic.topic_configs == {"min.insync.replicas": "1"}


def test_cluster_template_sets_three_copies_two_in_sync():
    cfg = config.load(config.REPO_ROOT / "conf" / "templates" / "cluster.toml", env={})
    for name in (cfg.kafka.samples_topic, cfg.kafka.dead_letter_topic, "gs.health"):
        topic = new_topic(cfg, name, cfg.kafka.partitions)
        assert topic.replication_factor == 3 and topic.topic_configs == {"min.insync.replicas": "2"}


def test_environment_overrides_and_nonsense_is_refused():
    cfg = config.load(env={"GAITSTREAM_KAFKA_REPLICATION_FACTOR": "5", "GAITSTREAM_KAFKA_MIN_INSYNC_REPLICAS": "3"})
    assert new_topic(cfg, "t").replication_factor == 5
    with pytest.raises(ValueError, match="min_insync_replicas"):
        new_topic(config.load(env={"GAITSTREAM_KAFKA_MIN_INSYNC_REPLICAS": "2"}), "t")
