#include "lang.hpp"

#include <map>

#include "chainrule/error.hpp"

namespace chainrule::cli {

namespace {

// English text → Simplified Chinese. Terms as Chinese ML textbooks use them: 损失 (loss),
// 梯度 (gradient), 链式法则 (chain rule), 学习率 (learning rate), 前向传播/反向传播, 权重, 偏置.
const std::map<std::string_view, std::string_view>& chinese() {
  static const std::map<std::string_view, std::string_view> m = {
      // explain, text
      {"Network", "网络"},
      {"Weights", "权重"},
      {"Sample", "样本"},
      {"Forward pass", "前向传播"},
      {"Loss", "损失"},
      {"loss", "损失"},
      {"parameters", "个参数"},
      {"Backward pass (sums over several paths)", "反向传播（多条路径之和）"},
      {"Gradients: chain rule, checked by central finite differences",
       "梯度：链式法则，并用中心有限差分检验"},
      {"finite difference", "有限差分"},
      {"relative error", "相对误差"},
      {"(neurons off the shown chains are left out)", "（不在所示链上的神经元从略）"},
      {"all weights 1, all biases 0 (the tutorial's worked case)",
       "所有权重为 1，所有偏置为 0（教程中的算例）"},
      {"every weight and bias from N(0, 1), seed {}", "每个权重和偏置都取自 N(0, 1)，随机种子 {}"},
      {"(x1 = weight, x2 = height, y = gender)", "（x1 = 体重，x2 = 身高，y = 性别）"},
      {"inputs after preprocessing", "预处理后的输入"},
      {"is", "即"},
      {"Showing", "显示"},
      {"row {0} of {1}", "{1} 的第 {0} 行"},
      {" (line {})", "（文件第 {} 行）"},
      {"row {}", "第 {} 行"},
      {"Model", "模型"},
      {"The data: the tutorial's four people (examples/people.csv).",
       "数据：教程中的四个人（examples/people.csv）。"},
      // explain, diagram
      {"Backpropagation is the chain rule", "反向传播就是链式法则"},
      {"Hover or click a weight or bias: its chain lights up and its factors show here.",
       "将鼠标悬停在某个权重或偏置上（或点击它）：它的链会高亮，各因子显示在这里。"},
      {"Every explained parameter", "所有解释的参数"},
      {"parameter", "参数"},
      {"value", "值"},
      {"chain-rule factors", "链式法则的各因子"},
      {"{} neurons off the explained chains are not drawn", "不在所解释链上的 {} 个神经元未画出"},
      {"a", "a"},
      // report
      {"chainrule training report", "chainrule 训练报告"},
      {"The run", "本次训练"},
      {"training data", "训练数据"},
      {"rows", "行数"},
      {"held out for validation:", "留作验证集的比例："},
      {"task", "任务"},
      {"classify", "分类"},
      {"regress", "回归"},
      {"target", "目标列"},
      {"classes", "类别数"},
      {"scaling:", "缩放："},
      {"more", "个未列出"},
      {"number", "数值"},
      {"text, one-hot", "文本，独热编码"},
      {"categories", "个类别"},
      {"features", "特征"},
      {"architecture", "网络结构"},
      {"hidden layers", "隐藏层"},
      {"learning rate", "学习率"},
      {"optimizer", "优化器"},
      {"schedule", "学习率调度"},
      {"batch", "批大小"},
      {"epochs", "轮数"},
      {"patience", "早停耐心"},
      {"seed", "随机种子"},
      {"report written", "报告生成于"},
      {"training took", "训练用时"},
      {"time", "时间"},
      {"version", "版本"},
      {"Training curves", "训练曲线"},
      {"No epoch has finished yet, or the model file keeps no history.",
       "还没有完成任何一轮，或者模型文件没有保存训练历史。"},
      {"training loss", "训练损失"},
      {"validation loss", "验证损失"},
      {"validation", "验证集"},
      {"training", "训练集"},
      {"best epoch", "最佳轮次"},
      {"early stop", "早停"},
      {"epoch", "轮次"},
      {"epochs run", "轮已完成"},
      {"accuracy", "准确率"},
      {"r2", "决定系数 R²"},
      {"none", "无"},
      {"Metrics", "指标"},
      {"split", "数据划分"},
      {"Give a data file (chainrule report MODEL DATA) for the confusion matrix, per-class "
       "metrics or predicted against true values.",
       "提供数据文件（chainrule report MODEL "
       "DATA）即可得到混淆矩阵、各类别指标或预测值与真实值的对比。"},
      {"On", "在"},
      {"true value", "真实值"},
      {"predicted", "预测值"},
      {"residual (true − predicted)", "残差（真实值 − 预测值）"},
      {"Confusion matrix", "混淆矩阵"},
      {"Rows: true class; columns: predicted class. Each cell: the count, and below it the share "
       "of its row; the colour is that share.",
       "行：真实类别；列：预测类别。每格为样本数，下方为占该行的比例，颜色深浅表示该比例。"},
      {"true", "真实"},
      {"Too many classes for a confusion matrix", "类别太多，无法画出混淆矩阵"},
      {"Per class", "各类别指标"},
      {"class", "类别"},
      {"precision", "精确率"},
      {"recall", "召回率"},
      {"support", "样本数"},
      {"The network", "网络"},
      {"Every neuron and weight: blue is positive, red negative, the width is the magnitude; "
       "hover for the value.",
       "每个神经元和权重：蓝色为正，红色为负，线宽表示大小；悬停可查看数值。"},
      {"One block per layer: the histogram of its weights", "每层一块：其权重的直方图"},
      {"and of their gradients on", "以及在以下行数上的梯度直方图："},
      {"rows of the data", "行数据"},
      {"layer", "层"},
      {"unit", "单元"},
      {"weight", "权重"},
      {"gradient ∂L/∂w", "梯度 ∂L/∂w"},
      {"count", "个数"},
      {"training: epoch", "训练中：轮次"},
      {"interrupted", "已中断"},
      {"finished", "已完成"},
      {"This page reloads itself every few seconds while training runs.",
       "训练进行期间，本页面每隔几秒自动刷新。"},
  };
  return m;
}

}  // namespace

Lang parse_lang(std::string_view s) {
  if (s == "en") return Lang::en;
  if (s == "zh") return Lang::zh;
  throw ConfigError("--lang: unknown language '" + std::string(s) +
                    "': expected en (English) or zh (Simplified Chinese)");
}

std::string_view html_lang(Lang l) {
  return l == Lang::zh ? "zh-Hans" : "en";
}

std::string tr(Lang lang, std::string_view key) {
  if (lang == Lang::zh) {
    const auto& m = chinese();
    if (const auto it = m.find(key); it != m.end()) return std::string(it->second);
  }
  return std::string(key);
}

void add_lang_option(CLI::App* app, Lang& lang) {
  app->add_option_function<std::string>(
         "--lang", [&lang](const std::string& s) { lang = parse_lang(s); },
         "Language of the text and pages: en (default) or zh (Simplified Chinese)")
      ->check(CLI::IsMember({"en", "zh"}));
}

std::string sign_reading(Lang lang, const std::string& p, double g, const std::string& english) {
  if (lang == Lang::en) return english;
  if (g > 0) return "为正：增大 " + p + " 会使 L 增大，所以梯度下降会减小 " + p;
  if (g < 0) return "为负：增大 " + p + " 会使 L 减小，所以梯度下降会增大 " + p;
  return "为零：" + p + " 的微小变化不改变这个样本的 L";
}

}  // namespace chainrule::cli
