package org.netadapt.benchmark.litert;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.netadapt.benchmark.core.ModelSession;
import org.netadapt.benchmark.core.TensorData;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;
import org.tensorflow.lite.gpu.GpuDelegate;
import org.tensorflow.lite.nnapi.NnApiDelegate;

/**
 * A model in LiteRT's Interpreter (org.tensorflow.lite, still shipped by LiteRT 2.x) with the
 * CPU (XNNPACK unless turned off), the GPU delegate (litert-gpu) or NNAPI. Inputs and outputs
 * are direct buffers in native order, rewound before every run, so a run copies nothing.
 */
public final class LiteRtSession implements ModelSession {
  public static final ModelSession.Factory FACTORY =
      new ModelSession.Factory() {
        @Override
        public ModelSession open(String modelPath, String delegate, int threads, boolean xnnpack) {
          return LiteRtSession.open(modelPath, delegate, threads, xnnpack);
        }
      };

  private final Interpreter interpreter;
  private final GpuDelegate gpu;
  private final NnApiDelegate nnapi;
  private final ByteBuffer[] inputs;
  private final Map<Integer, Object> outputs = new HashMap<>();

  private LiteRtSession(Interpreter interpreter, GpuDelegate gpu, NnApiDelegate nnapi) {
    this.interpreter = interpreter;
    this.gpu = gpu;
    this.nnapi = nnapi;
    inputs = new ByteBuffer[interpreter.getInputTensorCount()];
    for (int i = 0; i < inputs.length; i++) {
      inputs[i] = direct(interpreter.getInputTensor(i).numBytes());
    }
    for (int i = 0; i < interpreter.getOutputTensorCount(); i++) {
      outputs.put(i, direct(interpreter.getOutputTensor(i).numBytes()));
    }
  }

  static LiteRtSession open(String modelPath, String delegate, int threads, boolean useXnnpack) {
    Interpreter.Options options = new Interpreter.Options();
    options.setNumThreads(threads);
    options.setUseXNNPACK(useXnnpack);
    GpuDelegate gpu = null;
    NnApiDelegate nnapi = null;
    try {
      if (delegate.equals("gpu")) {
        gpu = new GpuDelegate();
        options.addDelegate(gpu);
      } else if (delegate.equals("nnapi")) {
        nnapi = new NnApiDelegate();
        options.addDelegate(nnapi);
      } else if (!delegate.equals("cpu")) {
        throw new IllegalArgumentException("unknown delegate " + delegate);
      }
      Interpreter interpreter = new Interpreter(new File(modelPath), options);
      interpreter.allocateTensors();
      return new LiteRtSession(interpreter, gpu, nnapi);
    } catch (RuntimeException | LinkageError e) {
      closeDelegates(gpu, nnapi);
      throw e;
    }
  }

  @Override
  public List<TensorData> inputSpecs() {
    List<TensorData> specs = new ArrayList<>();
    for (int i = 0; i < inputs.length; i++) {
      specs.add(describe(interpreter.getInputTensor(i), null));
    }
    return specs;
  }

  @Override
  public void setInputs(List<byte[]> data) {
    if (data.size() != inputs.length) {
      throw new IllegalArgumentException(
          "the model has " + inputs.length + " inputs, got data for " + data.size());
    }
    for (int i = 0; i < inputs.length; i++) {
      inputs[i].clear();
      inputs[i].put(data.get(i));
    }
  }

  @Override
  public void invoke() {
    for (ByteBuffer input : inputs) {
      input.rewind();
    }
    for (Object output : outputs.values()) {
      ((ByteBuffer) output).rewind();
    }
    interpreter.runForMultipleInputsOutputs(inputs, outputs);
  }

  @Override
  public List<TensorData> outputs() {
    List<TensorData> result = new ArrayList<>();
    for (int i = 0; i < outputs.size(); i++) {
      ByteBuffer buffer = (ByteBuffer) outputs.get(i);
      byte[] bytes = new byte[buffer.capacity()];
      buffer.rewind();
      buffer.get(bytes);
      result.add(describe(interpreter.getOutputTensor(i), bytes));
    }
    return result;
  }

  @Override
  public void close() {
    interpreter.close();
    closeDelegates(gpu, nnapi);
  }

  private static void closeDelegates(GpuDelegate gpu, NnApiDelegate nnapi) {
    if (gpu != null) {
      gpu.close();
    }
    if (nnapi != null) {
      nnapi.close();
    }
  }

  private static TensorData describe(Tensor tensor, byte[] bytes) {
    String dtype = tensor.dataType().name().toLowerCase(Locale.ROOT);
    return new TensorData(tensor.name(), dtype, tensor.shape(), tensor.numBytes(), bytes);
  }

  private static ByteBuffer direct(int bytes) {
    return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
  }
}
