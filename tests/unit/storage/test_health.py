"""One line for a storage outage: which NameNode, and whether it is down or read-only."""

from genoflow.storage.health import namenode_of, storage_unavailable_message

SAFE_MODE_TRACE = ("An error occurred while calling o91.mkdirs.\n: org.apache.hadoop.ipc.RemoteException"
                   "(org.apache.hadoop.hdfs.server.namenode.SafeModeException): Cannot create directory "
                   "/genoflow/steps/preprocess/x.tmp-pid1-ab. Name node is in safe mode.\n\tat org.apache...")
REFUSED_TRACE = ("An error occurred while calling o32.exists.\n: java.net.ConnectException: Call From vm/127.0.0.1 "
                 "to localhost:45999 failed on connection exception: java.net.ConnectException: Connection refused")


def test_namenode_of__hdfs_uris_only():
    assert namenode_of("hdfs://127.0.0.1:9000/genoflow") == "127.0.0.1:9000"
    assert namenode_of("hdfs://namenode/genoflow") == "namenode:8020"
    assert namenode_of("file:///tmp/data") is None


def test_storage_unavailable_message__safe_mode_names_the_namenode():
    message = storage_unavailable_message(RuntimeError(SAFE_MODE_TRACE), "hdfs://nn.example:8020/genoflow")
    assert "nn.example:8020" in message and "safe mode" in message and "\n" not in message


def test_storage_unavailable_message__refused_names_the_namenode():
    message = storage_unavailable_message(RuntimeError(REFUSED_TRACE), "hdfs://127.0.0.1:45999/g")
    assert message.startswith("cannot reach the HDFS NameNode 127.0.0.1:45999 (java.net.ConnectException)")


def test_storage_unavailable_message__other_errors_and_local_roots_pass_through():
    assert storage_unavailable_message(ValueError("bad value"), "hdfs://nn:8020/g") is None
    assert storage_unavailable_message(RuntimeError(REFUSED_TRACE), "file:///tmp/g") is None


def test_storage_unavailable_message__namenode_gone_mid_connection():
    trace = ('java.io.EOFException: End of File Exception between local host is: "vm/127.0.0.1"; destination host '
             'is: "localhost":46249; : java.io.EOFException')
    assert "cannot reach the HDFS NameNode nn:46249" in storage_unavailable_message(RuntimeError(trace),
                                                                                   "hdfs://nn:46249/g")
    assert storage_unavailable_message(RuntimeError("java.io.EOFException: Unexpected end of input stream"),
                                       "hdfs://nn:46249/g") is None


def test_storage_unavailable_message__datanodes_down_names_the_last_one_offered():
    from genoflow.storage.webhdfs import DataNodeUnreachable

    err = DataNodeUnreachable("HDFS DataNode dn7.example:9864 unreachable for /g/raw/cohort.vcf.gz "
                              "(Connection refused), and the NameNode offered no other (excluded: 10.0.0.7:9866)")
    message = storage_unavailable_message(RuntimeError(f"PythonException: {err}"), "hdfs://nn:8020/g")
    assert message.startswith("the HDFS NameNode nn:8020 answered, but no DataNode it offered could be reached "
                              "(the last: dn7.example:9864)")
