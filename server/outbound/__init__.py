"""Outbound delivery: text messages through an SMS gateway and the upload of archive changes
and fills to the provincial / national platform (docs/OUTBOUND.md).

Both are queues in PostgreSQL written in the same transaction as the business change that
causes them (migration 0080), drained by senders that run inside every `cylwatch serve`
process and claim work with ``FOR UPDATE SKIP LOCKED``, so any number of processes share
the work and a process that dies loses nothing. Where this package sits among the others,
and what it may import, is docs/ARCHITECTURE.md §2.

- ``server.outbound.sms``: :func:`~server.outbound.sms.enqueue_sms`, the one way a feature
  queues a text message; templates, phone numbers;
- ``server.outbound.sms_sender``: the SMS sender loop;
- ``server.outbound.upstream``: the upload sender loop, the switch the triggers read, the
  dead-letter retry;
- ``server.outbound.delivery``: what every HTTP outcome means (sent, retry later, give up),
  the backoff, the counters ``/metrics`` shows;
- ``server.outbound.service``: the cleanup context the app root runs the senders in.
"""
