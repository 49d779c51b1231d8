#!/usr/bin/env python3
"""A third-party reflection client against confab's gRPC API: grpcio-reflection's
ProtoReflectionDescriptorDatabase, which speaks only grpc.reflection.v1alpha (as older
grpcurl, grpcui, Postman and evans do). Lists the services, describes the control and
health services, and prints one line per finding. Exit 0 when all were found.

Usage: reflect.py HOST:PORT
"""
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main():
    channel = grpc.insecure_channel(sys.argv[1])
    db = ProtoReflectionDescriptorDatabase(channel)
    services = sorted(db.get_services())
    print("services:", " ".join(services))
    pool = DescriptorPool(db)
    control = pool.FindServiceByName("confab.v1.ConferenceControl")
    methods = sorted(m.name for m in control.methods)
    print("confab.v1.ConferenceControl methods:", " ".join(methods))
    health = pool.FindServiceByName("grpc.health.v1.Health")
    print("grpc.health.v1.Health methods:", " ".join(sorted(m.name for m in health.methods)))
    ok = (
        "confab.v1.ConferenceControl" in services
        and "grpc.health.v1.Health" in services
        and "ListConferences" in methods
        and "Check" in [m.name for m in health.methods]
    )
    print("reflection v1alpha:", "ok" if ok else "INCOMPLETE")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
