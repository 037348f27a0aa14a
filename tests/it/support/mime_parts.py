"""Reads RFC 5322 messages with Python's `email` package (a MIME parser
nobody here wrote) and prints, as JSON, what a mail reader would see of
each: its recipient and date, the tree of its parts' content types, and
every attachment with its file name, content type, size and SHA-256 of its
decoded bytes.

Usage: mime_parts.py FILE...   (or one message on stdin, without FILEs)

Each attachment's name is read twice: with the modern parser
(`email.policy.default`, which reads RFC 2231's `filename*`) and with the
old one (`compat32`, which takes the plain `filename`), so a test sees both
the name and its ASCII fallback.
"""
import email
import email.policy
import hashlib
import json
import sys


def tree(part):
    if part.is_multipart():
        return {part.get_content_type(): [tree(p) for p in part.iter_parts()]}
    return part.get_content_type()


def facts(raw):
    message = email.message_from_bytes(raw, policy=email.policy.default)
    old = email.message_from_bytes(raw, policy=email.policy.compat32)
    old_parts = list(old.walk())
    attachments = []
    for index, part in enumerate(message.walk()):
        if part.get_content_disposition() != "attachment":
            continue
        data = part.get_payload(decode=True)
        attachments.append({
            "filename": part.get_filename(),
            "ascii_filename": old_parts[index].get_filename(),
            "content_type": part.get_content_type(),
            "charset": part.get_param("charset"),
            "transfer_encoding": part.get("Content-Transfer-Encoding"),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        })
    return {
        "to": str(message.get("To")),
        "date": message.get("Date").datetime.isoformat(),
        "tree": tree(message),
        "calendar_parts": sum(1 for p in message.walk() if p.get_content_type() == "text/calendar"),
        "attachments": attachments,
        "defects": [str(d) for p in message.walk() for d in p.defects],
    }


def main():
    if len(sys.argv) > 1:
        messages = []
        for path in sys.argv[1:]:
            with open(path, "rb") as f:
                messages.append(f.read())
    else:
        messages = [sys.stdin.buffer.read()]
    print(json.dumps([facts(raw) for raw in messages]))


if __name__ == "__main__":
    main()
