"""From one store to a chain (issue 24, docs/chain.md).

* ``bridge``: the mosquitto bridge stanza (store broker -> head-office broker) and the head office's
  ACL lines for a store, generated from the store's config;
* ``config``: the head office's ``hq.yaml`` (collector: broker, database, batching);
* ``store``: the PostgreSQL schema, its migrations and the writes (alerts once by id, windows upserted);
* ``collector``: the MQTT -> PostgreSQL collector (persistent session, manual acknowledgement);
* ``report``: chain figures per store and chain-wide, PNG charts, CSV.

psycopg (the ``chain`` extra) is imported only by the modules that talk to PostgreSQL.
"""

TOPIC_ROOT = "fashion-edge"
