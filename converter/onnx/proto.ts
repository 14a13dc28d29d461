/**
 * The subset of onnx.proto (ONNX IR 8+) that the graph builder writes, as a protobufjs reflection root.
 * Field numbers follow onnx/onnx.proto; only the fields we emit are declared.
 */
import protobuf from "protobufjs";

/** ONNX TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type DataTypeName = keyof typeof DataType;

/** ONNX AttributeProto.AttributeType values. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

const root = protobuf.Root.fromJSON({
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { id: 1, type: "int64" },
            opsetImport: { id: 8, type: "OperatorSetIdProto", rule: "repeated" },
            producerName: { id: 2, type: "string" },
            producerVersion: { id: 3, type: "string" },
            docString: { id: 6, type: "string" },
            graph: { id: 7, type: "GraphProto" },
            metadataProps: { id: 14, type: "StringStringEntryProto", rule: "repeated" },
          },
        },
        OperatorSetIdProto: { fields: { domain: { id: 1, type: "string" }, version: { id: 2, type: "int64" } } },
        StringStringEntryProto: { fields: { key: { id: 1, type: "string" }, value: { id: 2, type: "string" } } },
        GraphProto: {
          fields: {
            node: { id: 1, type: "NodeProto", rule: "repeated" },
            name: { id: 2, type: "string" },
            initializer: { id: 5, type: "TensorProto", rule: "repeated" },
            docString: { id: 10, type: "string" },
            input: { id: 11, type: "ValueInfoProto", rule: "repeated" },
            output: { id: 12, type: "ValueInfoProto", rule: "repeated" },
          },
        },
        NodeProto: {
          fields: {
            input: { id: 1, type: "string", rule: "repeated" },
            output: { id: 2, type: "string", rule: "repeated" },
            name: { id: 3, type: "string" },
            opType: { id: 4, type: "string" },
            attribute: { id: 5, type: "AttributeProto", rule: "repeated" },
            domain: { id: 7, type: "string" },
          },
        },
        AttributeProto: {
          fields: {
            name: { id: 1, type: "string" },
            type: { id: 20, type: "int32" },
            f: { id: 2, type: "float" },
            i: { id: 3, type: "int64" },
            s: { id: 4, type: "bytes" },
            t: { id: 5, type: "TensorProto" },
            floats: { id: 7, type: "float", rule: "repeated" },
            ints: { id: 8, type: "int64", rule: "repeated" },
          },
        },
        TensorProto: {
          fields: {
            dims: { id: 1, type: "int64", rule: "repeated" },
            dataType: { id: 2, type: "int32" },
            name: { id: 8, type: "string" },
            rawData: { id: 9, type: "bytes" },
            externalData: { id: 13, type: "StringStringEntryProto", rule: "repeated" },
            dataLocation: { id: 14, type: "int32" },
          },
        },
        ValueInfoProto: { fields: { name: { id: 1, type: "string" }, type: { id: 2, type: "TypeProto" } } },
        TypeProto: { fields: { tensorType: { id: 1, type: "TypeProtoTensor" } } },
        TypeProtoTensor: { fields: { elemType: { id: 1, type: "int32" }, shape: { id: 2, type: "TensorShapeProto" } } },
        TensorShapeProto: { fields: { dim: { id: 1, type: "Dimension", rule: "repeated" } } },
        Dimension: { fields: { dimValue: { id: 1, type: "int64" }, dimParam: { id: 2, type: "string" } } },
      },
    },
  },
});

export const ModelProto = root.lookupType("onnx.ModelProto");
