"""The metering rules: plain, typed Python with an injected clock.

Nothing in this package imports HTTP, SQL or reads the wall clock. The protocol layer, the
CLI and (later) the admin API all call `MeteringService`; the store is reached only through
the interface in `marketmeter.domain.ports`.
"""
