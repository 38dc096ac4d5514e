"""The outbound sender: delivers the outbox to the smarthost, DKIM-signed, with retries.

`sender` claims outbox rows and runs the delivery lanes, `delivery` turns the relay's answer
into retry, bounce or done, and `dkim` signs each mail just before it leaves. The SMTP client
itself is a protocol edge (`gateway.smarthost`).
"""
