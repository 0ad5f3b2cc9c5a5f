-- Records on the audit or results topics that the sink could not decode or store. They are
-- skipped so one bad record cannot stall the sink, and kept here so they are not lost unseen.
CREATE TABLE sink_rejected_records (
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    reason          text NOT NULL,
    value           bytea,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
