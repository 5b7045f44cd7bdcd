// Progress output: the bar and durations, redrawn bar lines on a terminal, plain lines
// without escape codes otherwise.
#include "core/progress.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

TEST(Progress, BarAndDuration) {
  EXPECT_EQ(progress_bar(0, 10, 10), "[..........]");
  EXPECT_EQ(progress_bar(5, 10, 10), "[#####.....]");
  EXPECT_EQ(progress_bar(10, 10, 10), "[##########]");
  EXPECT_EQ(progress_bar(3, 0, 4), "[....]");
  EXPECT_EQ(format_duration(42.4), "42s");
  EXPECT_EQ(format_duration(65), "1m05s");
  EXPECT_EQ(format_duration(7380), "2h03m");
  EXPECT_EQ(format_duration(-3), "0s");
}

TEST(Progress, PlainLinesWhenNotATerminal) {
  ::testing::internal::CaptureStderr();
  {
    Progress p(4, true, /*tty=*/false);
    p.update(1, "loss 2.0", 30, false);
    p.update(2, "loss 1.5", 20, true);
    p.update(4, "loss 1.0", 0, true);
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "step 2/4  loss 1.5  ETA 20s\nstep 4/4  loss 1.0  done\n");
}

TEST(Progress, RedrawnBarOnATerminal) {
  ::testing::internal::CaptureStderr();
  {
    Progress p(4, true, /*tty=*/true);
    p.update(1, "loss 2.0", 90, false);
    p.break_line();
    p.update(2, "loss 1.5", 60, false);
  }
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(out, "\r\033[Kstep 1/4 [#####...............]  25%  loss 2.0  ETA 1m30s\n"
                 "\r\033[Kstep 2/4 [##########..........]  50%  loss 1.5  ETA 1m00s\n");
}

TEST(Progress, DisabledPrintsNothing) {
  ::testing::internal::CaptureStderr();
  {
    Progress p(4, false, true);
    p.update(4, "loss 1.0", 0, true);
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace lathe
