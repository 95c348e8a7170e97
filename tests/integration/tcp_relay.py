"""A TCP relay on loopback that a test can cut, to put a network partition between one process
and a server: `cut()` closes every connection through it and from then on holds new ones
without forwarding a byte (as a dropped link does), `restore()` lets the held ones go and
forwards again.

    relay = TcpRelay(target_port).start()
    ... a client connects to 127.0.0.1:relay.port ...
    relay.cut(); ...; relay.restore()
    relay.stop()
"""

import socket
import threading


class TcpRelay:
    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open = []  # every socket of the relay's connections, forwarded or held
        self.forwarding = True
        self.stopped = False

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed by stop()
            with self.lock:
                self.open.append(client)
                forwarding = self.forwarding
            if forwarding:
                threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client):
        try:
            server = socket.create_connection(self.target, timeout=2)
            server.settimeout(None)  # the timeout was for the connect only: a watch is quiet for long
        except OSError:
            client.close()
            return
        with self.lock:
            self.open.append(server)
        threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
        self._pump(server, client)

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _close_all(self, forwarding):
        with self.lock:
            sockets, self.open = self.open, []
            self.forwarding = forwarding
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut(self):
        self._close_all(forwarding=False)

    def restore(self):
        self._close_all(forwarding=True)  # the connections held while cut go

    def stop(self):
        self.listener.close()
        self._close_all(forwarding=False)
