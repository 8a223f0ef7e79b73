/**
 * Leading comments from a descriptor's source info (present in `buf build`
 * images and `protoc --include_source_info` sets, absent from most
 * reflection servers). @bufbuild/protoplugin has `getComments`, but it
 * depends on TypeScript at run time; the lookup is a path into
 * `sourceCodeInfo`, which this module computes for the kinds a document uses.
 */
import type { DescEnum, DescField, DescFile, DescMessage, DescMethod, DescOneof, DescService } from "@bufbuild/protobuf";

/** Field numbers in descriptor.proto that source paths are made of. */
const path = {
  fileMessage: 4,
  fileEnum: 5,
  fileService: 6,
  messageField: 2,
  messageNested: 3,
  messageEnum: 4,
  messageOneof: 8,
  serviceMethod: 2,
} as const;

type Commented = DescMessage | DescField | DescOneof | DescEnum | DescService | DescMethod;

function sourcePath(desc: Commented): number[] {
  switch (desc.kind) {
    case "message":
      return desc.parent === undefined
        ? [path.fileMessage, desc.file.proto.messageType.indexOf(desc.proto)]
        : [...sourcePath(desc.parent), path.messageNested, desc.parent.proto.nestedType.indexOf(desc.proto)];
    case "enum":
      return desc.parent === undefined
        ? [path.fileEnum, desc.file.proto.enumType.indexOf(desc.proto)]
        : [...sourcePath(desc.parent), path.messageEnum, desc.parent.proto.enumType.indexOf(desc.proto)];
    case "field":
      return [...sourcePath(desc.parent), path.messageField, desc.parent.proto.field.indexOf(desc.proto)];
    case "oneof":
      return [...sourcePath(desc.parent), path.messageOneof, desc.parent.proto.oneofDecl.indexOf(desc.proto)];
    case "service":
      return [path.fileService, desc.file.proto.service.indexOf(desc.proto)];
    case "rpc":
      return [...sourcePath(desc.parent), path.serviceMethod, desc.parent.proto.method.indexOf(desc.proto)];
  }
}

function fileOf(desc: Commented): DescFile {
  switch (desc.kind) {
    case "field":
    case "oneof":
      return desc.parent.file;
    case "rpc":
      return desc.parent.file;
    default:
      return desc.file;
  }
}

/** Leading comments of one file by source path ("4,0,2,1"), built once per file. */
const byFile = new WeakMap<DescFile, Map<string, string>>();

function commentsOf(file: DescFile): Map<string, string> {
  let comments = byFile.get(file);
  if (comments === undefined) {
    comments = new Map();
    for (const location of file.proto.sourceCodeInfo?.location ?? []) {
      const text = location.leadingComments;
      if (text !== undefined && text.trim() !== "") comments.set(location.path.join(","), text);
    }
    byFile.set(file, comments);
  }
  return comments;
}

/**
 * The element's leading comment, trimmed, with the single space protoc
 * keeps after `//` removed from each line; undefined when there is none.
 */
export function descriptionOf(desc: Commented): string | undefined {
  const comments = commentsOf(fileOf(desc));
  if (comments.size === 0) return undefined;
  const text = comments.get(sourcePath(desc).join(","));
  if (text === undefined) return undefined;
  return text
    .replace(/\r\n?/g, "\n")
    .split("\n")
    .map((line) => (line.startsWith(" ") ? line.slice(1) : line))
    .join("\n")
    .trim();
}

/** The first sentence (or line) of a description: an operation's summary. */
export function summaryOf(description: string): string {
  const firstParagraph = description.split(/\n\s*\n/)[0]!.replace(/\s*\n\s*/g, " ");
  const sentence = /^(.+?[.!?])(\s|$)/.exec(firstParagraph);
  return sentence === null ? firstParagraph : sentence[1]!;
}
