#!/usr/bin/env python3
"""Raised hands through a third-party gRPC client that knows confab's API only by
server reflection (grpcio-reflection, v1alpha): no generated code, no .proto file.
Lists the room's participants, raises the hand of the last one then the first one,
lists the hands, lowers all, and prints one JSON line per answer.

Usage: hands.py HOST:PORT TOKEN ROOM
"""
import json
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.json_format import MessageToDict
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "confab.v1.ConferenceControl"


def main():
    addr, token, room = sys.argv[1:4]
    channel = grpc.insecure_channel(addr)
    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    service = pool.FindServiceByName(SERVICE)
    metadata = [("authorization", "Bearer " + token)]

    def call(method, **fields):
        m = service.FindMethodByName(method)
        request = GetMessageClass(m.input_type)(**fields)
        reply = GetMessageClass(m.output_type)
        stub = channel.unary_unary(
            "/%s/%s" % (SERVICE, method),
            request_serializer=lambda r: r.SerializeToString(),
            response_deserializer=reply.FromString,
        )
        answer = MessageToDict(stub(request, metadata=metadata), preserving_proto_field_name=True)
        print(json.dumps({"method": method, "answer": answer}), flush=True)
        return answer

    people = call("ListParticipants", conference=room)["participants"]
    first, last = people[0]["id"], people[-1]["id"]
    call("RaiseHand", conference=room, participant=last)
    call("RaiseHand", conference=room, participant=first)
    call("ListRaisedHands", conference=room)
    call("LowerAllHands", conference=room)
    try:
        call("RaiseHand", conference=room, participant="nobody")
    except grpc.RpcError as e:
        print(json.dumps({"method": "RaiseHand", "error": e.code().name}), flush=True)


if __name__ == "__main__":
    main()
