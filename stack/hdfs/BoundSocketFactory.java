package gaitstream.hdfs;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.UnknownHostException;
import org.apache.hadoop.conf.Configurable;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.net.StandardSocketFactory;

/**
 * Hadoop RPC client sockets bound to {@code gaitstream.rpc.bind-address} before they connect.
 *
 * <p>Several DataNodes on one machine, each on its own loopback address (stack/hdfs.sh with
 * hdfs.datanodes): the NameNode takes a DataNode's address from the source of its RPC connection
 * and tells DataNodes apart by that address and their transfer port. Unbound, every connection to
 * 127.0.0.1 leaves from 127.0.0.1, so two DataNodes on the same port would be one node to the
 * NameNode (each registration replacing the other). Each DataNode's hdfs-site.xml names this class
 * for its NameNode protocol ({@code hadoop.rpc.socket.factory.class.DatanodeProtocolPB}) and its own
 * address; stack/hdfs.sh compiles it against the Hadoop jars on first use.
 */
public class BoundSocketFactory extends StandardSocketFactory implements Configurable {
  public static final String BIND_ADDRESS_KEY = "gaitstream.rpc.bind-address";

  private Configuration conf;
  private InetAddress bindAddress;

  @Override
  public void setConf(Configuration conf) {
    this.conf = conf;
    String host = conf.getTrimmed(BIND_ADDRESS_KEY, "");
    try {
      bindAddress = host.isEmpty() ? null : InetAddress.getByName(host);
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException(BIND_ADDRESS_KEY + " = " + host + ": unknown host", e);
    }
  }

  @Override
  public Configuration getConf() {
    return conf;
  }

  @Override
  public Socket createSocket() throws IOException {
    Socket socket = super.createSocket();
    if (bindAddress != null) {
      socket.bind(new InetSocketAddress(bindAddress, 0));
    }
    return socket;
  }
}
